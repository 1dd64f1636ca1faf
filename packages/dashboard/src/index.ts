/**
 * @taskmesh/dashboard: a live web page of the mesh, served by its own process.
 *
 *   import { createDashboard } from '@taskmesh/dashboard';
 *   const d = await createDashboard('config/dashboard.json', { pollMs: 1000 });
 *   console.log(`open ${d.url}`);
 *   await d.close();
 *
 * From a shell: `taskmesh dashboard --config FILE [--port N]` or `taskmesh-dashboard`.
 */
export { Dashboard, createDashboard, type DashboardOptions, type LiveTask, type Snapshot } from './dashboard';
export { runDashboardCli } from './cli';
