/**
 * `taskmesh-worker --tasks PATH` (SPEC section 8, the background-jobs seed): a folder where each
 * .js/.mjs file is one task named after the file (cleaned to [A-Za-z0-9_-]), reloaded when it
 * changes, a module that fails to load logged and skipped; or a module whose default export is a
 * function `(worker) => void` or an object `{ name: fn }`.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TaskClient, loadConfig } from '@taskmesh/common';
import type { Redis } from 'ioredis';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  freePort,
  randomPrefix,
  redis,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
  countLogs,
} from './helpers';

describe('task loader', () => {
  const prefix = randomPrefix('loader');
  const dir = tmpDir('loader');
  const tasksDir = tmpDir('loader-tasks');
  const procs: Proc[] = [];
  let port: number;
  let client: TaskClient;
  let r: Redis;
  let folderWorker: Proc;

  const registered = async (workerId: string): Promise<string[]> => JSON.parse((await r.hget(`${prefix}worker:${workerId}`, 'tasks')) ?? '[]') as string[];
  const run = async (name: string, config: Record<string, unknown>) => {
    const id = await client.submit(name, config);
    return client.wait(id, { timeoutMs: 15000 });
  };

  beforeAll(async () => {
    r = redis();
    port = await freePort();
    const d = spawnBin('distributor', ['--config', writeConfig(dir, 'd', distributorConfig(prefix, port))], {}, 'distributor');
    procs.push(d);
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));

    writeFileSync(join(tasksDir, 'hello.js'), "'use strict';\nmodule.exports = async (c) => ({ hello: c.who ?? 'world', version: 1 });\n");
    writeFileSync(
      join(tasksDir, 're-verse.mjs'),
      "export default async function (c, ctx) {\n  return { reversed: String(c.s).split('').reverse().join(''), name: ctx.name };\n}\n",
    );
    writeFileSync(join(tasksDir, 'my task!.js'), 'module.exports = async (c, ctx) => ({ cleaned: ctx.name, n: c.n });\n');
    writeFileSync(join(tasksDir, 'broken.js'), "throw new Error('broken at load time');\n");
    writeFileSync(join(tasksDir, 'README.txt'), 'not a task\n');

    folderWorker = spawnBin(
      'worker',
      ['--config', writeConfig(dir, 'wf', workerConfig(prefix, [port], { id: 'loader-folder' })), '--tasks', tasksDir],
      {},
      'loader-folder',
    );
    procs.push(folderWorker);
    await d.waitForLog('worker connected', { worker: 'loader-folder' });
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await client?.close();
    r?.disconnect();
    await cleanPrefix(prefix);
  });

  test('a folder: each file is a task with a cleaned name; a module that throws at load is logged and skipped', async () => {
    await folderWorker.waitForLog('task module failed to load; skipped', { file: /broken\.js/, reason: /broken at load time/ });
    const names = await waitFor('registered task names', async () => {
      const n = await registered('loader-folder');
      return n.length >= 3 ? n : null;
    });
    expect([...names].sort()).toEqual(['hello', 'mytask', 're-verse']);
    expect(folderWorker.running).toBe(true);

    const hello = await run('hello', { who: 'mesh' });
    expect(hello.state).toBe('END');
    expect(hello.result).toEqual({ hello: 'mesh', version: 1 });
    expect(hello.worker).toBe('loader-folder');

    const rev = await run('re-verse', { s: 'abc' });
    expect(rev.state).toBe('END');
    expect(rev.result).toEqual({ reversed: 'cba', name: 're-verse' });

    const mt = await run('mytask', { n: 5 });
    expect(mt.state).toBe('END');
    expect(mt.result).toEqual({ cleaned: 'mytask', n: 5 });
  });

  test('editing a file is picked up for the next task without a restart', async () => {
    const pid = folderWorker.pid;
    const loadsBefore = countLogs(folderWorker.output, /^task module (re)?loaded$/, { name: 'hello' });
    writeFileSync(join(tasksDir, 'hello.js'), "'use strict';\nmodule.exports = async (c) => ({ hello: `again ${c.who}`, version: 2 });\n");
    await waitFor('hello reloaded', () => countLogs(folderWorker.output, /^task module (re)?loaded$/, { name: 'hello' }) > loadsBefore, 10000);
    const rec = await run('hello', { who: 'there' });
    expect(rec.state).toBe('END');
    expect(rec.result).toEqual({ hello: 'again there', version: 2 });
    expect(folderWorker.running).toBe(true);
    expect(folderWorker.pid).toBe(pid);

    // An ES module is reloaded too.
    const revLoads = countLogs(folderWorker.output, /^task module (re)?loaded$/, { name: 're-verse' });
    writeFileSync(join(tasksDir, 're-verse.mjs'), "export default async (c) => ({ reversed: String(c.s).split('').reverse().join('').toUpperCase() });\n");
    await waitFor('re-verse reloaded', () => countLogs(folderWorker.output, /^task module (re)?loaded$/, { name: 're-verse' }) > revLoads, 10000);
    expect((await run('re-verse', { s: 'xyz' })).result).toEqual({ reversed: 'ZYX' });
  });

  test("a changed file is picked up after the old module's unload ran", async () => {
    const marker = join(dir, 'unloaded-v1');
    const v = (n: number) =>
      `'use strict';\nconst fs = require('node:fs');\nconst unloadedBefore = fs.existsSync(${JSON.stringify(marker)});\nmodule.exports = async () => ({ v: ${n}, unloadedBefore });\nmodule.exports.unload = () => fs.writeFileSync(${JSON.stringify(marker)}, 'v${n}');\n`;
    writeFileSync(join(tasksDir, 'counter.js'), v(1));
    await waitFor('counter registered', async () => (await registered('loader-folder')).includes('counter'), 10000);
    expect((await run('counter', {})).result).toEqual({ v: 1, unloadedBefore: false });
    writeFileSync(join(tasksDir, 'counter.js'), v(2));
    // v2 is loaded only after v1's unload wrote the marker, so v2 saw it at load time.
    const rec = await waitFor(
      'v2 active',
      async () => {
        const r = await run('counter', {});
        return (r.result as { v: number }).v === 2 ? r : null;
      },
      15000,
      100,
    );
    expect(rec.result).toEqual({ v: 2, unloadedBefore: true });
    expect(readFileSync(marker, 'utf8')).toBe('v1');
    unlinkSync(join(tasksDir, 'counter.js'));
  });

  test('a broken module that is fixed becomes a task; its queued task then runs', async () => {
    const id = await client.submit('broken', { fixed: true });
    expect((await client.status(id))!.state).toBe('QUEUED');
    writeFileSync(join(tasksDir, 'broken.js'), 'module.exports = async (c) => ({ fixed: c.fixed });\n');
    await waitFor('broken registered', async () => (await registered('loader-folder')).includes('broken'), 10000);
    const rec = await client.wait(id, { timeoutMs: 15000 });
    expect(rec.state).toBe('END');
    expect(rec.result).toEqual({ fixed: true });
  });

  test('a new file added to the folder becomes a task', async () => {
    writeFileSync(join(tasksDir, 'late_comer.js'), 'module.exports = async () => 42;\n');
    await waitFor('late_comer registered', async () => (await registered('loader-folder')).includes('late_comer'), 10000);
    expect((await run('late_comer', {})).result).toBe(42);
    unlinkSync(join(tasksDir, 'late_comer.js'));
  });

  test('a module whose default export is (worker) => void that calls addTask', async () => {
    const file = join(tasksDir, '..', `${tasksDir.split('/').pop()}-fnmodule.js`);
    writeFileSync(
      file,
      "'use strict';\nmodule.exports = (worker) => {\n  worker.addTask('shout', async (c) => ({ up: String(c.s).toUpperCase() }));\n  worker.addTask('whisper', async (c) => ({ down: String(c.s).toLowerCase() }));\n};\n",
    );
    const w = spawnBin('worker', ['--config', writeConfig(dir, 'wfn', workerConfig(prefix, [port], { id: 'loader-fn' })), '--tasks', file], {}, 'loader-fn');
    procs.push(w);
    await waitFor('shout registered', async () => (await registered('loader-fn')).length === 2);
    expect((await registered('loader-fn')).sort()).toEqual(['shout', 'whisper']);
    const rec = await run('shout', { s: 'hey' });
    expect(rec).toMatchObject({ state: 'END', result: { up: 'HEY' }, worker: 'loader-fn' });
    expect((await run('whisper', { s: 'HeY' })).result).toEqual({ down: 'hey' });
  });

  test('an ES module whose default export is an object { name: fn }', async () => {
    const file = join(tasksDir, '..', `${tasksDir.split('/').pop()}-objmodule.mjs`);
    writeFileSync(file, 'export default {\n  add: async (c) => ({ sum: c.a + c.b }),\n  notAFunction: 42,\n};\n');
    const w = spawnBin('worker', ['--config', writeConfig(dir, 'wobj', workerConfig(prefix, [port], { id: 'loader-obj' })), '--tasks', file], {}, 'loader-obj');
    procs.push(w);
    await waitFor('add registered', async () => (await registered('loader-obj')).includes('add'));
    expect(await registered('loader-obj')).toEqual(['add']);
    expect((await run('add', { a: 2, b: 3 })).result).toEqual({ sum: 5 });
  });
});
