// Example task module for `taskmesh-worker --tasks examples/tasks.js`: an object { name: fn }.
'use strict';

const { sleep } = require('@taskmesh/worker');

module.exports = {
  /** Returns its config. */
  echo: async (config) => config,

  /** Sleeps `ms` (default 1000) in `steps` steps, reporting progress. */
  sleep: async (config, ctx) => {
    const steps = config.steps ?? 10;
    const ms = config.ms ?? 1000;
    for (let i = 1; i <= steps; i++) {
      await sleep(ms / steps, ctx.signal);
      ctx.progress(i, steps);
    }
    return { slept: ms, attempt: ctx.attempt };
  },

  /** Counts words in `text`. */
  wordcount: async (config) => ({
    words: String(config.text ?? '')
      .split(/\s+/)
      .filter(Boolean).length,
  }),

  /** Throws `message` (to try retries and FAILED). */
  fail: async (config) => {
    throw new Error(config.message ?? 'this task always fails');
  },
};
