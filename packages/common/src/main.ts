/** Process plumbing shared by the bins: exit codes and signal handling. */
import { ConfigError, TaskmeshError } from './errors';
import { LOG_ROLES, createLogger, type LogRole } from './log';

/** Bad configuration: one line naming the key or file, exit code 2, no stack trace. */
export function exitOnConfigError(err: unknown): never | void {
  if (err instanceof ConfigError) {
    process.stderr.write(`taskmesh: config error: ${err.message}\n`);
    process.exit(2);
  }
}

/**
 * Runs a daemon: starts it, and on SIGTERM/SIGINT closes it gracefully and exits 0. A second
 * signal exits at once.
 */
export function runMain(name: string, start: () => Promise<{ close(): Promise<void> }>): void {
  let stopping = false;
  const log = createLogger(roleOf(name));
  // A daemon logs a stray rejection and carries on: no input should take it down.
  process.on('unhandledRejection', (err: unknown) => {
    log.error('unhandled rejection', { reason: err instanceof Error ? err.message : String(err) });
  });
  start().then(
    (service) => {
      const stop = (sig: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        log.info('shutting down', { signal: sig });
        service.close().then(
          () => process.exit(0),
          (err: Error) => {
            log.error('shutdown failed', { reason: err.message });
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    },
    (err: unknown) => {
      exitOnConfigError(err);
      const msg = err instanceof TaskmeshError || err instanceof Error ? err.message : String(err);
      log.error('could not start', { reason: msg });
      process.exit(1);
    },
  );
}

/** `taskmesh-worker` → `worker`: the role its log lines carry. */
function roleOf(name: string): LogRole {
  const r = name.replace(/^taskmesh-/, '');
  return (LOG_ROLES as readonly string[]).includes(r) ? (r as LogRole) : 'cli';
}
