/** `taskmesh-worker --config FILE --tasks PATH [--concurrency N]` */
import { configPathFromArgs, loadConfig } from '@taskmesh/common';
import { createLogger, exitOnConfigError, runMain } from '@taskmesh/common/internal';
import { loadTasks } from './task-loader';
import { Worker } from './worker';

const USAGE = 'usage: taskmesh-worker --config FILE --tasks PATH [--concurrency N]';

function usage(msg?: string): never {
  if (msg) process.stderr.write(`taskmesh-worker: ${msg}\n`);
  process.stderr.write(`${USAGE}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  if (i === -1) return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) usage(`${name} needs a value`);
  return v;
};
const tasksPath = opt('--tasks') ?? usage('--tasks PATH is required');
const concurrency = opt('--concurrency');
if (concurrency !== undefined && !/^[1-9]\d*$/.test(concurrency)) usage('--concurrency must be an integer >= 1');

let worker: Worker;
try {
  worker = new Worker(loadConfig('worker', configPathFromArgs(args), concurrency ? { concurrency: Number(concurrency) } : {}));
} catch (err) {
  exitOnConfigError(err);
  throw err;
}
const log = createLogger('worker', { id: worker.id });
runMain('taskmesh-worker', async () => {
  const tasks = await loadTasks(worker, tasksPath, log);
  if (worker.taskNames.length === 0) log.warn('no task functions loaded', { tasks: tasksPath });
  await worker.start();
  return {
    close: async () => {
      tasks.close();
      await worker.close();
    },
  };
});
