/** `taskmesh-distributor --config FILE [--log-level LEVEL]` */
import { loadConfig, type DistributorConfig } from '@taskmesh/common';
import { COMMON_OPTIONS, commonOverrides, configPath, exitOnConfigError, exitOnUsageError, parseCommandLine, runMain } from '@taskmesh/common/internal';
import { Distributor } from './distributor';

const USAGE = 'usage: taskmesh-distributor --config FILE [--log-level LEVEL]';

let config: DistributorConfig;
try {
  const { values } = parseCommandLine(process.argv.slice(2), COMMON_OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  config = loadConfig('distributor', configPath(values), commonOverrides(values));
} catch (err) {
  exitOnConfigError(err);
  exitOnUsageError('taskmesh-distributor', USAGE, err);
  throw err;
}
const distributor = new Distributor(config);
runMain('taskmesh-distributor', async () => {
  await distributor.start();
  return distributor;
});
