/** Process plumbing shared by the bins: exit codes and signal handling. */
import { ConfigError, TaskmeshError } from './errors';

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
  // A daemon logs a stray rejection and carries on: no input should take it down.
  process.on('unhandledRejection', (err: unknown) => {
    process.stderr.write(`${new Date().toISOString()} ERROR ${name} unhandled rejection: ${err instanceof Error ? err.message : String(err)}\n`);
  });
  start().then(
    (service) => {
      const stop = (sig: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        process.stderr.write(`${new Date().toISOString()} INFO ${name} ${sig} received, shutting down\n`);
        service.close().then(
          () => process.exit(0),
          (err: Error) => {
            process.stderr.write(`${name}: shutdown failed: ${err.message}\n`);
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
      process.stderr.write(`${name}: ${msg}\n`);
      process.exit(1);
    },
  );
}
