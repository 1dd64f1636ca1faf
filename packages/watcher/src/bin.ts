/** `taskmesh-watch --config FILE [--json] [--follow] [--log-level LEVEL] (TASK_ID... | --all | --name NAME)` */
import { isTerminal, loadConfig, UsageError, type TaskEvent, type WatcherConfig } from '@taskmesh/common';
import { COMMON_OPTIONS, commonOverrides, configPath, exitOnConfigError, exitOnUsageError, parseCommandLine } from '@taskmesh/common/internal';
import { HumanRenderer } from './render';
import { Watcher, type WatchFilter } from './watcher';

const USAGE = 'usage: taskmesh-watch --config FILE [--json] [--follow] [--log-level LEVEL] (TASK_ID... | --all | --name NAME)';
const HELP = `${USAGE}

Live events of tasks, straight from the workers that run them.
  TASK_ID...   follow these tasks across requeue until each is terminal
  --all        every task on every worker, including tasks that start later
  --name NAME  every task named NAME
  --json       one event per line (NDJSON), fields as in docs/protocol.md
  --follow     keep going past terminal states (stop with Ctrl-C)
Without --follow it exits when every watched task is terminal: 0 if all ended END, 1 otherwise.
With --all or --name that is once every task it saw is terminal and no event came for 1 s.
Exit codes: 2 usage or config error, 3 unknown task id.`;

/** With --all / --name and no --follow: how long all must be quiet before it exits. */
const QUIET_MS = 1000;

const OPTIONS = {
  ...COMMON_OPTIONS,
  json: { type: 'boolean' },
  follow: { type: 'boolean' },
  all: { type: 'boolean' },
  name: { type: 'string' },
} as const;

let ids: string[];
let json: boolean;
let follow: boolean;
let all: boolean;
let name: string | undefined;
let config: WatcherConfig;
try {
  const { values, positionals } = parseCommandLine(process.argv.slice(2), OPTIONS, { positionals: true });
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    process.exit(0);
  }
  ids = positionals;
  json = values.json === true;
  follow = values.follow === true;
  all = values.all === true;
  name = values.name;
  if (name === '') throw new UsageError('--name needs a task name');
  if (Number(ids.length > 0) + Number(all) + Number(name !== undefined) !== 1) throw new UsageError('watch task ids, --all or --name NAME (one of them)');
  config = loadConfig('watcher', configPath(values), commonOverrides(values));
} catch (err) {
  exitOnConfigError(err);
  exitOnUsageError('taskmesh-watch', USAGE, err);
  throw err;
}

const human = json ? null : new HumanRenderer(process.stdout, process.stdout.isTTY === true);
const watcher = new Watcher(config, {
  onWorker: (id, up) => process.stderr.write(`taskmesh-watch: ${up ? 'watching' : 'lost'} worker ${id}\n`),
});

function print(ev: TaskEvent): void {
  if (human) human.event(ev);
  else process.stdout.write(`${JSON.stringify(ev)}\n`);
}

async function exit(code: number): Promise<never> {
  human?.finish();
  await watcher.close();
  // stdout may be a pipe: let it drain before leaving.
  process.stdout.write('', () => process.exit(code));
  return new Promise<never>(() => undefined);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void exit(follow ? 0 : 130));

const terminal = (s: unknown): boolean => typeof s === 'string' && isTerminal(s);

async function watchIds(): Promise<void> {
  const final = new Map<string, unknown>();
  try {
    await Promise.all(
      ids.map(async (id) => {
        for await (const ev of watcher.watch(id, { follow })) {
          print(ev);
          if (ev.type === 'state' && terminal(ev.state)) final.set(id, ev.state);
        }
      }),
    );
  } catch (err) {
    process.stderr.write(`taskmesh-watch: ${(err as Error).message}\n`);
    // An unknown id, or a watch that failed otherwise.
    await exit(3);
  }
  await exit(ids.every((id) => final.get(id) === 'END') ? 0 : 1);
}

function watchMany(filter: WatchFilter): void {
  const live = new Set<string>();
  const ended = new Map<string, unknown>();
  let lastEvent = Date.now();
  watcher.subscribe(filter, (ev) => {
    print(ev);
    lastEvent = Date.now();
    if (ev.type === 'state' && terminal(ev.state)) {
      live.delete(ev.task);
      ended.set(ev.task, ev.state);
    } else {
      live.add(ev.task);
      ended.delete(ev.task);
    }
  });
  if (follow) return;
  const t = setInterval(() => {
    if (ended.size > 0 && live.size === 0 && Date.now() - lastEvent >= QUIET_MS) {
      clearInterval(t);
      void exit([...ended.values()].every((s) => s === 'END') ? 0 : 1);
    }
  }, 100);
}

if (ids.length > 0) void watchIds();
else watchMany(all ? { all: true } : { name: name! });
