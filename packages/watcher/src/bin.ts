/** `taskmesh-watch --config FILE [--json] [--follow] (TASK_ID... | --all | --name NAME)` */
import { configPathFromArgs, loadConfig, type TaskEvent } from '@taskmesh/common';
import { exitOnConfigError } from '@taskmesh/common/internal';
import { Watcher } from './watcher';

const USAGE = 'usage: taskmesh-watch --config FILE [--json] [--follow] (TASK_ID... | --all | --name NAME)';

function usage(msg: string): never {
  process.stderr.write(`taskmesh-watch: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const ids: string[] = [];
let json = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--config') i++;
  else if (a.startsWith('--config=')) continue;
  else if (a === '--json') json = true;
  else if (a === '--all' || a === '--name' || a === '--follow') usage(`${a} is not available yet: watch task ids`);
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else ids.push(a);
}
if (ids.length === 0) usage('name at least one TASK_ID');

let watcher: Watcher;
try {
  watcher = new Watcher(loadConfig('cli', configPathFromArgs(args)));
} catch (err) {
  exitOnConfigError(err);
  throw err;
}

function print(ev: TaskEvent): void {
  if (json) process.stdout.write(`${JSON.stringify(ev)}\n`);
  else {
    const extra = ev.error ? ` ${String(ev.error)}` : ev.result !== undefined ? ` ${JSON.stringify(ev.result)}` : '';
    process.stdout.write(`${new Date(ev.ts).toISOString()} ${ev.task} ${ev.name} attempt ${ev.attempt} ${String(ev.state)}${extra}\n`);
  }
}

void (async () => {
  let allEnded = true;
  try {
    await Promise.all(
      ids.map(async (id) => {
        let last: TaskEvent | undefined;
        for await (const ev of watcher.watch(id)) {
          print(ev);
          last = ev;
        }
        if (last?.state !== 'END') allEnded = false;
      }),
    );
  } catch (err) {
    process.stderr.write(`taskmesh-watch: ${(err as Error).message}\n`);
    await watcher.close();
    process.exit(3);
  }
  await watcher.close();
  process.exit(allEnded ? 0 : 1);
})();
