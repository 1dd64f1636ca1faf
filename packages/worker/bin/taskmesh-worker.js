#!/usr/bin/env node
'use strict';
// A worker holds thousands of long-lived tasks: memory, not allocation speed, is what they cost.
// V8 would grow the young generation to 16 MiB a half on the first burst of starts and keep it;
// held at its initial size, a worker with 5,000 running tasks uses about 20 MiB less RSS, for
// about 15 % more worker CPU on a flood of no-op tasks (docs/performance.md, W4). Set before
// anything is loaded; an explicit semi-space flag of the operator's wins.
const flags = `${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`;
if (!/semi[-_]space/.test(flags)) require('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
require('../dist/bin.js');
