/**
 * Command-line parsing shared by every bin: `node:util` `parseArgs` in strict mode, the options
 * every bin takes (`--config`, `--log-level`, `--help`), and parse failures turned into
 * `UsageError`s (exit 2 with the usage line) instead of Node's `ERR_PARSE_ARGS_*` errors.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './errors';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every bin accepts, before its own. */
export const COMMON_OPTIONS = {
  config: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export type CommonOptions = typeof COMMON_OPTIONS;

/** What parseArgs hands back for an option table: strings and booleans, absent when not given. */
export type Values<O extends Options> = {
  [K in keyof O]?: O[K] extends { type: 'string' } ? string : boolean;
};

export interface CommandLine<O extends Options> {
  values: Values<O>;
  positionals: string[];
}

/**
 * Parses `argv` against `options` (strict: an unknown option, a missing value or a value given to
 * a flag is a UsageError). `numeric` names string options whose value may be a negative number:
 * parseArgs refuses a value that starts with `-` unless it is written `--opt=-5`, and `--priority -5`
 * must keep working.
 */
export function parseCommandLine<O extends Options>(
  argv: readonly string[],
  options: O,
  opts: { positionals?: boolean; numeric?: readonly string[] } = {},
): CommandLine<O> {
  const args = joinNegativeValues(argv, opts.numeric ?? []);
  try {
    const r = parseArgs({ args, options, strict: true, allowPositionals: opts.positionals ?? false });
    return { values: r.values as Values<O>, positionals: r.positionals };
  } catch (err) {
    throw new UsageError(usageMessage(err));
  }
}

function joinNegativeValues(argv: readonly string[], numeric: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    if (numeric.includes(a.replace(/^--/, '')) && a.startsWith('--') && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** Node's parseArgs messages are long and suggest `--` tricks; one short line names the option. */
function usageMessage(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const msg = String(e.message ?? err);
  const opt = /'(-{1,2}[^\s']+)/.exec(msg)?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${opt ?? msg}`;
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument ${/'([^']*)'/.exec(msg)?.[1] ?? msg}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/does not take an argument/.test(msg)) return `${opt ?? 'option'} takes no value`;
      return `${opt ?? 'option'} needs a value`;
    default:
      return msg;
  }
}

/** The config file: `--config FILE` (or `--config=FILE`), else `TASKMESH_CONFIG`. */
export function configPath(values: { config?: string | undefined }, environment: NodeJS.ProcessEnv = process.env): string | undefined {
  return values.config ?? (environment.TASKMESH_CONFIG || undefined);
}

/** Config overrides from the flags every bin takes: `--log-level LEVEL` sets `log.level`. */
export function commonOverrides(values: { 'log-level'?: string | undefined }): Record<string, unknown> {
  const level = values['log-level'];
  return level === undefined ? {} : { log: { level } };
}

/** A usage error: one line naming the problem, then the usage line, on stderr; exit code 2. */
export function exitOnUsageError(bin: string, usage: string, err: unknown): never | void {
  if (err instanceof UsageError) {
    process.stderr.write(`${bin}: ${err.message}\n${usage}\n`);
    process.exit(2);
  }
}
