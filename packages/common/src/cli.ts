/**
 * `taskmesh`: submit, status, wait, cancel, retry, ls, certs, dashboard; `--help` anywhere prints
 * the usage. Exit codes: 0 ok, 1 task FAILED/CANCELLED, 2 usage or config error, 3 unknown task
 * id, 124 wait timed out.
 */
import { parseArgs } from 'node:util';
import { TaskClient, type SubmitOptions } from './client';
import { loadConfig } from './config';
import { generateDevCerts, DEFAULT_CERT_NAMES } from './certs';
import { TaskmeshError, UnknownTaskError, UsageError } from './errors';
import { TASK_STATES, type TaskRecord, type TaskState } from './record';
import { exitOnConfigError } from './main';
import { COMMON_OPTIONS, commonOverrides, configPath, parseCommandLine, type Values } from './args';

const USAGE = `usage: taskmesh <command> [--config FILE] [--log-level LEVEL] ...
  submit NAME [JSON] [--id ID] [--max-attempts N] [--priority N] [--clean-end] [--state-optional] [--wait | --no-wait] [--timeout S]
  status ID [--json]
  wait ID [--timeout S]
  cancel ID
  retry ID
  ls [--state S] [--json]
  certs DIR [--names a,b,...]
  dashboard [--port N]      (a live web page; needs @taskmesh/dashboard)`;

/**
 * Each command's own options and positionals (beside COMMON_OPTIONS). A new command is one entry
 * here plus one case in `run`.
 */
const COMMANDS = {
  submit: {
    positionals: ['NAME', 'JSON?'],
    options: {
      id: { type: 'string' },
      'max-attempts': { type: 'string' },
      'max-stalls': { type: 'string' },
      priority: { type: 'string' },
      'clean-end': { type: 'boolean' },
      'state-optional': { type: 'boolean' },
      wait: { type: 'boolean' },
      'no-wait': { type: 'boolean' },
      timeout: { type: 'string' },
    },
  },
  status: { positionals: ['ID'], options: { json: { type: 'boolean' } } },
  wait: { positionals: ['ID'], options: { timeout: { type: 'string' } } },
  cancel: { positionals: ['ID'], options: {} },
  retry: { positionals: ['ID'], options: {} },
  ls: { positionals: [], options: { state: { type: 'string' }, json: { type: 'boolean' } } },
  certs: { positionals: ['DIR'], options: { names: { type: 'string' } } },
} as const;

type Command = keyof typeof COMMANDS;
/**
 * Every option of every command: the first pass, which only has to find the command. An option
 * name means the same (type) in every command that has it.
 */
const ALL_OPTIONS = Object.assign({}, COMMON_OPTIONS, ...Object.values(COMMANDS).map((c) => c.options)) as typeof COMMON_OPTIONS &
  (typeof COMMANDS)[Command]['options'];
/** Options whose value may be a negative number (`--priority -5`). */
const NUMERIC = ['priority', 'max-attempts', 'max-stalls'];

type Flags = Values<typeof COMMON_OPTIONS> & Record<string, string | boolean | undefined>;

interface Parsed {
  cmd: Command | 'help';
  /** Positionals after the command. */
  args: string[];
  flags: Flags;
}

/**
 * Two passes: the first, over every command's options, finds the command wherever `--config`
 * and friends sit on the line; the second parses again with only that command's options, so an
 * option of another command is refused as unknown.
 */
function parseLine(argv: string[]): Parsed {
  const first = parseCommandLine(argv, ALL_OPTIONS, { positionals: true, numeric: NUMERIC });
  if (first.values.help) return { cmd: 'help', args: [], flags: first.values as Flags };
  const cmd = first.positionals[0];
  if (cmd === undefined) throw new UsageError('missing command');
  if (!Object.hasOwn(COMMANDS, cmd)) throw new UsageError(`unknown command ${cmd}`);
  const spec = COMMANDS[cmd as Command];
  const p = parseCommandLine(argv, { ...COMMON_OPTIONS, ...spec.options }, { positionals: true, numeric: NUMERIC });
  const args = p.positionals.slice(1);
  const want = spec.positionals as readonly string[];
  const required = want.filter((w) => !w.endsWith('?'));
  if (args.length < required.length) throw new UsageError(`missing ${required[args.length]!}`);
  if (args.length > want.length) throw new UsageError(`unexpected argument ${args[want.length]!}`);
  return { cmd: cmd as Command, args, flags: p.values as Flags };
}

function stringFlag(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

function intFlag(p: Parsed, name: string): number | undefined {
  const v = stringFlag(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new UsageError(`--${name} must be an integer`);
  return Number(v);
}

function timeoutFlag(p: Parsed): number | undefined {
  const v = stringFlag(p, 'timeout');
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError('--timeout must be a number of seconds');
  return n * 1000;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function summary(r: TaskRecord): string {
  const t = (ms: number | null) => (ms ? new Date(ms).toISOString() : '-');
  const lines = [
    `id:        ${r.id}`,
    `name:      ${r.name}`,
    `state:     ${r.state}${r.cancel_requested ? ' (cancel requested)' : ''}`,
    `attempts:  ${r.attempts} (max ${r.max_attempts}), stalls ${r.stalls} (max ${r.max_stalls}), epoch ${r.epoch}`,
    `worker:    ${r.worker ?? '-'}   distributor: ${r.distributor ?? '-'}`,
    `created:   ${t(r.created_at)}   started: ${t(r.started_at)}   updated: ${t(r.updated_at)}   ended: ${t(r.ended_at)}`,
    `config:    ${JSON.stringify(r.config)}`,
  ];
  if (r.result !== null) lines.push(`result:    ${JSON.stringify(r.result)}`);
  if (r.error) lines.push(`error:     ${r.error}`);
  return lines.join('\n');
}

/** Prints the outcome of a wait and returns the exit code. */
function reportEnd(r: TaskRecord): number {
  if (r.state === 'END') {
    out(JSON.stringify(r.result));
    return 0;
  }
  process.stderr.write(`task ${r.id} ${r.state}${r.error ? `: ${r.error}` : ''}\n`);
  return 1;
}

async function waitFor(client: TaskClient, id: string, timeoutMs: number | undefined): Promise<number> {
  try {
    return reportEnd(await client.wait(id, timeoutMs === undefined ? {} : { timeoutMs }));
  } catch (err) {
    if (err instanceof TaskmeshError && err.code === 'TIMEOUT') {
      process.stderr.write(`timed out: ${err.message}\n`);
      return 124;
    }
    throw err;
  }
}

/**
 * `taskmesh dashboard ...`: the page lives in @taskmesh/dashboard, which depends on this package,
 * so it is found at run time (from the working directory, then beside this file) and handed the
 * rest of the arguments; it parses its own flags and runs until SIGTERM/SIGINT.
 */
async function dashboard(argv: string[]): Promise<number> {
  let entry: string;
  try {
    entry = require.resolve('@taskmesh/dashboard', { paths: [process.cwd(), __dirname] });
  } catch {
    process.stderr.write('taskmesh: dashboard: @taskmesh/dashboard is not installed (add it beside @taskmesh/common, or run taskmesh-dashboard)\n');
    return 2;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- resolved at run time: a static import would make common depend on its own dependent
  const mod = require(entry) as { runDashboardCli?: (args: string[]) => Promise<number> };
  if (typeof mod.runDashboardCli !== 'function') throw new Error(`${entry} exports no runDashboardCli`);
  return mod.runDashboardCli(argv);
}

/** Where the command word `dashboard` is on the line (its first positional), or -1. */
function dashboardAt(argv: string[]): number {
  const { tokens } = parseArgs({ args: argv, options: { ...ALL_OPTIONS, port: { type: 'string' } }, strict: false, allowPositionals: true, tokens: true });
  const first = tokens.find((t) => t.kind === 'positional');
  return first?.kind === 'positional' && first.value === 'dashboard' ? first.index : -1;
}

async function run(argv: string[]): Promise<number> {
  // The dashboard parses its own line (with node:util parseArgs too), wherever `--config` sits.
  const at = dashboardAt(argv);
  if (at !== -1) return dashboard([...argv.slice(0, at), ...argv.slice(at + 1)]);
  const p = parseLine(argv);
  if (p.cmd === 'help') {
    out(USAGE);
    return 0;
  }
  const has = (name: string): boolean => p.flags[name] === true;
  if (p.cmd === 'certs') {
    const dir = p.args[0]!;
    const namesFlag = stringFlag(p, 'names');
    const names =
      namesFlag !== undefined
        ? namesFlag
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : DEFAULT_CERT_NAMES;
    if (names.length === 0) throw new UsageError('--names needs at least one name');
    const files = await generateDevCerts(dir, { names });
    out(`CA: ${files.ca}`);
    for (const [name, f] of Object.entries(files.leaves)) out(`${name}: ${f.cert} ${f.key}`);
    return 0;
  }
  const config = loadConfig('cli', configPath(p.flags), commonOverrides(p.flags));
  const client = new TaskClient(config);
  try {
    switch (p.cmd) {
      case 'submit': {
        const name = p.args[0]!;
        let cfg: Record<string, unknown> = {};
        if (p.args[1] !== undefined) {
          try {
            cfg = JSON.parse(p.args[1]) as Record<string, unknown>;
          } catch {
            throw new UsageError('JSON must be valid JSON, e.g. \'{"x":1}\'');
          }
          if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new UsageError('JSON must be a JSON object');
        }
        if (has('wait') && has('no-wait')) throw new UsageError('--wait and --no-wait exclude each other');
        const id = stringFlag(p, 'id');
        const opts: SubmitOptions = { clean_end: has('clean-end'), state_optional: has('state-optional') };
        if (id !== undefined) opts.id = id;
        const maxAttempts = intFlag(p, 'max-attempts');
        const maxStalls = intFlag(p, 'max-stalls');
        const priority = intFlag(p, 'priority');
        if (maxAttempts !== undefined) opts.max_attempts = maxAttempts;
        if (maxStalls !== undefined) opts.max_stalls = maxStalls;
        if (priority !== undefined) opts.priority = priority;
        const timeoutMs = timeoutFlag(p);
        let taskId: string;
        try {
          taskId = await client.submit(name, cfg, opts);
        } catch (err) {
          if (err instanceof TaskmeshError && err.code === 'BAD_ENVELOPE') throw new UsageError(err.message);
          throw err;
        }
        out(taskId);
        return has('wait') ? await waitFor(client, taskId, timeoutMs) : 0;
      }
      case 'status': {
        const id = p.args[0]!;
        const r = await client.status(id);
        if (!r) throw new UnknownTaskError(id);
        out(has('json') ? JSON.stringify(r) : summary(r));
        return 0;
      }
      case 'wait':
        return await waitFor(client, p.args[0]!, timeoutFlag(p));
      case 'cancel': {
        const id = p.args[0]!;
        const state = await client.cancel(id);
        out(state === 'RUNNING' ? 'cancel requested: the worker running it is being told' : state);
        return 0;
      }
      case 'retry': {
        const id = p.args[0]!;
        const state = await client.retry(id);
        if (state !== 'QUEUED') {
          process.stderr.write(`taskmesh: task ${id} is ${state}: only a FAILED or CANCELLED task can be retried\n`);
          return 1;
        }
        out(state);
        return 0;
      }
      case 'ls': {
        const s = stringFlag(p, 'state');
        if (s !== undefined && !TASK_STATES.includes(s as TaskState)) throw new UsageError(`--state must be one of ${TASK_STATES.join(', ')}`);
        const rows = await client.list(s !== undefined ? { state: s as TaskState } : {});
        if (has('json')) for (const r of rows) out(JSON.stringify(r));
        else for (const r of rows) out(`${r.id}  ${r.state.padEnd(9)}  ${r.name}  attempts=${r.attempts}${r.worker ? `  worker=${r.worker}` : ''}`);
        return 0;
      }
    }
    return 2;
  } finally {
    await client.close();
  }
}

run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    exitOnConfigError(err);
    if (err instanceof UsageError) {
      process.stderr.write(`taskmesh: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    if (err instanceof UnknownTaskError) {
      process.stderr.write(`taskmesh: ${err.message}\n`);
      process.exit(3);
    }
    process.stderr.write(`taskmesh: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
