/**
 * `taskmesh dashboard --config FILE [--port N]` (also the `taskmesh-dashboard` bin). Prints the
 * page's address, runs until SIGTERM/SIGINT, then closes and resolves with the exit code:
 * 0 after a signal, 1 when it could not start (the port is taken), 2 for a usage or config error.
 */
import { ConfigError, loadConfig, type DashboardConfig } from '@taskmesh/common';
import { COMMON_OPTIONS, commonOverrides, configPath, parseCommandLine, type Values } from '@taskmesh/common/internal';
import { Dashboard } from './dashboard';

const USAGE = 'usage: taskmesh dashboard --config FILE [--port N] [--log-level LEVEL]';
const OPTIONS = { ...COMMON_OPTIONS, port: { type: 'string' } } as const;
const HELP = `${USAGE}

A live web page of the mesh: workers, distributors, queue depths, running tasks with live
progress, recent failures and the dead list, with buttons to cancel and retry.
  --config FILE  a dashboard config (role dashboard: redis.*, key/cert/ca, share_key, dashboard.*);
                 TASKMESH_CONFIG if absent
  --port N       overrides dashboard.port (0 = any free port)
  --log-level L  overrides log.level
It binds dashboard.host (127.0.0.1 by default). Cancel and retry need dashboard.token
(Authorization: Bearer; the page asks for it) or, with dashboard.tls, a client certificate.
Exit codes: 0 after SIGTERM/SIGINT, 1 could not start, 2 usage or config error.`;

function usageError(msg: string): number {
  process.stderr.write(`taskmesh dashboard: ${msg}\n${USAGE}\n`);
  return 2;
}

export async function runDashboardCli(argv: readonly string[]): Promise<number> {
  let values: Values<typeof OPTIONS>;
  try {
    ({ values } = parseCommandLine(argv, OPTIONS));
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port > 65535) return usageError('--port must be a port number 0-65535');
  }
  let config: DashboardConfig;
  try {
    config = loadConfig('dashboard', configPath(values), { ...commonOverrides(values), ...(port === undefined ? {} : { dashboard: { port } }) });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`taskmesh: config error: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const dashboard = new Dashboard(config);
  try {
    await dashboard.start();
  } catch (err) {
    await dashboard.close();
    process.stderr.write(`taskmesh dashboard: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`taskmesh dashboard: open ${dashboard.url}${config.dashboard.token ? ' (cancel and retry ask for dashboard.token)' : ''}\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      // A second signal while closing leaves at once.
      if (stopping) process.exit(1);
      stopping = true;
      dashboard.close().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
