/** `taskmesh-distributor --config FILE` */
import { configPathFromArgs, loadConfig } from '@taskmesh/common';
import { exitOnConfigError, runMain } from '@taskmesh/common/internal';
import { Distributor } from './distributor';

const USAGE = 'usage: taskmesh-distributor --config FILE';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
let config;
try {
  config = loadConfig('distributor', configPathFromArgs(args));
} catch (err) {
  exitOnConfigError(err);
  throw err;
}
const distributor = new Distributor(config);
runMain('taskmesh-distributor', async () => {
  await distributor.start();
  return distributor;
});
