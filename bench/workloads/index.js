'use strict';
/**
 * Every workload, in the order `pnpm bench` runs them. To add one, write bench/workloads/wN.js exporting { id, title, cases(opts), targets(results) } (see w1.js and
 * bench/README.md) and add it to this list.
 */
module.exports = [require('./w1'), require('./w2'), require('./w3'), require('./w4'), require('./w5'), require('./w6'), require('./floor')];
