/**
 * `taskmesh`: submit, status, wait, cancel, retry, ls, certs, dashboard. Exit codes: 0 ok, 1 task FAILED/CANCELLED,
 * 2 usage or config error, 3 unknown task id, 124 wait timed out.
 */
import { TaskClient, type SubmitOptions } from './client';
import { configPathFromArgs, loadConfig } from './config';
import { generateDevCerts, DEFAULT_CERT_NAMES } from './certs';
import { TaskmeshError, UnknownTaskError, UsageError } from './errors';
import { TASK_STATES, type TaskRecord, type TaskState } from './record';
import { exitOnConfigError } from './main';

const USAGE = `usage: taskmesh <command> [--config FILE] ...
  submit NAME [JSON] [--id ID] [--max-attempts N] [--priority N] [--clean-end] [--state-optional] [--wait | --no-wait] [--timeout S]
  status ID [--json]
  wait ID [--timeout S]
  cancel ID
  retry ID
  ls [--state S] [--json]
  certs DIR [--names a,b,...]
  dashboard [--port N]      (a live web page; needs @taskmesh/dashboard)`;

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(['--config', '--id', '--max-attempts', '--max-stalls', '--priority', '--timeout', '--state', '--names']);
const BOOL_FLAGS = new Set(['--json', '--clean-end', '--state-optional', '--wait', '--no-wait']);

function parseArgs(argv: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a : a.slice(0, eq);
      if (VALUE_FLAGS.has(name)) {
        const v = eq === -1 ? argv[++i] : a.slice(eq + 1);
        if (v === undefined) throw new UsageError(`${name} needs a value`);
        flags.set(name, v);
      } else if (BOOL_FLAGS.has(name) && eq === -1) {
        flags.set(name, true);
      } else {
        throw new UsageError(`unknown option ${a}`);
      }
    } else {
      positional.push(a);
    }
  }
  return { positional, flags };
}

function intFlag(p: Parsed, name: string): number | undefined {
  const v = p.flags.get(name);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^-?\d+$/.test(v)) throw new UsageError(`${name} must be an integer`);
  return Number(v);
}

function timeoutFlag(p: Parsed): number | undefined {
  const v = p.flags.get('--timeout');
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n < 0) throw new UsageError('--timeout must be a number of seconds');
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

function need(p: Parsed, n: number, what: string): string {
  const v = p.positional[n];
  if (v === undefined) throw new UsageError(`missing ${what}`);
  return v;
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

async function run(argv: string[]): Promise<number> {
  if (argv[0] === 'dashboard') return dashboard(argv.slice(1));
  const p = parseArgs(argv);
  const cmd = p.positional[0];
  if (!cmd) throw new UsageError('missing command');
  if (cmd === 'certs') {
    const dir = need(p, 1, 'DIR');
    const namesFlag = p.flags.get('--names');
    const names = typeof namesFlag === 'string' ? namesFlag.split(',').map((s) => s.trim()).filter(Boolean) : DEFAULT_CERT_NAMES;
    if (names.length === 0) throw new UsageError('--names needs at least one name');
    const files = await generateDevCerts(dir, { names });
    out(`CA: ${files.ca}`);
    for (const [name, f] of Object.entries(files.leaves)) out(`${name}: ${f.cert} ${f.key}`);
    return 0;
  }
  if (!['submit', 'status', 'wait', 'cancel', 'retry', 'ls'].includes(cmd)) throw new UsageError(`unknown command ${cmd}`);
  const config = loadConfig('cli', configPathFromArgs(argv));
  const client = new TaskClient(config);
  try {
    switch (cmd) {
      case 'submit': {
        const name = need(p, 1, 'NAME');
        let cfg: Record<string, unknown> = {};
        if (p.positional[2] !== undefined) {
          try {
            cfg = JSON.parse(p.positional[2]) as Record<string, unknown>;
          } catch {
            throw new UsageError('JSON must be valid JSON, e.g. \'{"x":1}\'');
          }
          if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg)) throw new UsageError('JSON must be a JSON object');
        }
        if (p.flags.has('--wait') && p.flags.has('--no-wait')) throw new UsageError('--wait and --no-wait exclude each other');
        const id = p.flags.get('--id');
        const opts: SubmitOptions = { clean_end: p.flags.has('--clean-end'), state_optional: p.flags.has('--state-optional') };
        if (typeof id === 'string') opts.id = id;
        const maxAttempts = intFlag(p, '--max-attempts');
        const maxStalls = intFlag(p, '--max-stalls');
        const priority = intFlag(p, '--priority');
        if (maxAttempts !== undefined) opts.max_attempts = maxAttempts;
        if (maxStalls !== undefined) opts.max_stalls = maxStalls;
        if (priority !== undefined) opts.priority = priority;
        let taskId: string;
        try {
          taskId = await client.submit(name, cfg, opts);
        } catch (err) {
          if (err instanceof TaskmeshError && err.code === 'BAD_ENVELOPE') throw new UsageError(err.message);
          throw err;
        }
        out(taskId);
        return p.flags.has('--wait') ? await waitFor(client, taskId, timeoutFlag(p)) : 0;
      }
      case 'status': {
        const id = need(p, 1, 'ID');
        const r = await client.status(id);
        if (!r) throw new UnknownTaskError(id);
        out(p.flags.has('--json') ? JSON.stringify(r) : summary(r));
        return 0;
      }
      case 'wait':
        return await waitFor(client, need(p, 1, 'ID'), timeoutFlag(p));
      case 'cancel': {
        const id = need(p, 1, 'ID');
        const state = await client.cancel(id);
        out(state === 'RUNNING' ? 'cancel requested: the worker running it is being told' : state);
        return 0;
      }
      case 'retry': {
        const id = need(p, 1, 'ID');
        const state = await client.retry(id);
        if (state !== 'QUEUED') {
          process.stderr.write(`taskmesh: task ${id} is ${state}: only a FAILED or CANCELLED task can be retried\n`);
          return 1;
        }
        out(state);
        return 0;
      }
      case 'ls': {
        const s = p.flags.get('--state');
        if (s !== undefined && !TASK_STATES.includes(s as TaskState)) throw new UsageError(`--state must be one of ${TASK_STATES.join(', ')}`);
        const rows = await client.list(typeof s === 'string' ? { state: s as TaskState } : {});
        if (p.flags.has('--json')) for (const r of rows) out(JSON.stringify(r));
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
