/** `taskmesh-worker --config FILE --tasks PATH [--concurrency N] [--log-level LEVEL]` */
import { loadConfig, UsageError } from '@taskmesh/common';
import {
  COMMON_OPTIONS,
  commonOverrides,
  configPath,
  createLogger,
  exitOnConfigError,
  exitOnUsageError,
  parseCommandLine,
  runMain,
} from '@taskmesh/common/internal';
import { loadTasks } from './task-loader';
import { Worker } from './worker';

const USAGE = 'usage: taskmesh-worker --config FILE --tasks PATH [--concurrency N] [--log-level LEVEL]';

const OPTIONS = { ...COMMON_OPTIONS, tasks: { type: 'string' }, concurrency: { type: 'string' } } as const;

let worker: Worker;
let tasksPath: string;
try {
  const { values } = parseCommandLine(process.argv.slice(2), OPTIONS);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  if (values.tasks === undefined) throw new UsageError('--tasks PATH is required');
  tasksPath = values.tasks;
  const concurrency = values.concurrency;
  if (concurrency !== undefined && !/^[1-9]\d*$/.test(concurrency)) throw new UsageError('--concurrency must be an integer >= 1');
  const overrides = { ...commonOverrides(values), ...(concurrency !== undefined ? { concurrency: Number(concurrency) } : {}) };
  worker = new Worker(loadConfig('worker', configPath(values), overrides));
} catch (err) {
  exitOnConfigError(err);
  exitOnUsageError('taskmesh-worker', USAGE, err);
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
