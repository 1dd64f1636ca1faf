/** `taskmesh-dashboard --config FILE [--port N]`: the same as `taskmesh dashboard`. */
import { runDashboardCli } from './cli';

runDashboardCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`taskmesh dashboard: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
