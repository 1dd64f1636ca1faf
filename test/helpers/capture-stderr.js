// Tees the log lines the jest process itself writes on stderr into this run's log folder, so global-teardown.js also greps
// the log lines of distributors, workers and watchers the tests run in-process.
'use strict';
const { appendFileSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.TASKMESH_TEST_LOG_DIR;
// In-process loggers write JSON lines even when jest runs in a terminal: tests match them as JSON.
// (The bins the helpers spawn write to a pipe, so they do anyway; binEnv() drops this variable.)
process.env.TASKMESH_LOG_FORMAT = 'json';
const stream = process.stderr;
// Once per process: each test file runs this again in the same worker.
if (dir && !stream.__taskmeshCapture) {
  const file = join(dir, `jest-${process.pid}.log`);
  const write = stream.write;
  stream.__taskmeshCapture = true;
  stream.write = function capture(chunk, ...rest) {
    try {
      // Log lines only: when jest runs in band its own report (which may quote a failed
      // expectation's secret) goes through this stream too, and is not a log.
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      if (text.startsWith('{"level":')) appendFileSync(file, text);
    } catch {
      // the folder is gone (a later run pruned it): keep writing to stderr
    }
    return write.call(this, chunk, ...rest);
  };
}
