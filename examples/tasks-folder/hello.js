// One task per file: this one is named "hello". Edit it while the worker runs: it is reloaded.
'use strict';
module.exports = async (config) => ({ greeting: `hello, ${config.who ?? 'world'}` });
