/**
 * @taskmesh/distributor: the daemon that feeds workers and supervises tasks.
 *
 *   import { Distributor } from '@taskmesh/distributor';
 *   const d = new Distributor('config/distributor.json');
 *   await d.start();
 *   // ... later
 *   await d.close();   // stops pulling, hands back what it pulled, deregisters
 */
export { Distributor } from './distributor';
