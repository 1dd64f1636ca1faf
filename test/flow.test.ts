/**
 * The skeleton end to end: real bins, real Redis, real TLS. 500 echo tasks through one distributor
 * and two workers all reach END with the right results, spread over both workers.
 */
import { TaskClient, loadConfig } from '@taskmesh/common';
import {
  cleanPrefix,
  clientConfig,
  distributorConfig,
  FIXTURE_TASKS,
  freePort,
  randomPrefix,
  spawnBin,
  tmpDir,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';

describe('task flow', () => {
  const prefix = randomPrefix('flow');
  const dir = tmpDir('flow');
  const procs: Proc[] = [];
  let client: TaskClient;

  beforeAll(async () => {
    const port = await freePort();
    const d = spawnBin('distributor', ['--config', writeConfig(dir, 'd', distributorConfig(prefix, port))], {}, 'distributor');
    procs.push(d);
    for (const n of [1, 2]) {
      procs.push(
        spawnBin(
          'worker',
          ['--config', writeConfig(dir, `w${n}`, workerConfig(prefix, [port], { id: `flow-w${n}`, concurrency: 8 })), '--tasks', FIXTURE_TASKS],
          {},
          `w${n}`,
        ),
      );
    }
    await d.waitForLog('worker connected', { worker: 'flow-w1' });
    await d.waitForLog('worker connected', { worker: 'flow-w2' });
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await client?.close();
    await cleanPrefix(prefix);
  });

  test('500 echo tasks reach END with their results, spread over both workers', async () => {
    const ids = await Promise.all(Array.from({ length: 500 }, (_, i) => client.submit('echo', { i })));
    expect(new Set(ids).size).toBe(500);
    const records = await Promise.all(ids.map((id) => client.wait(id, { timeoutMs: 60000 })));
    records.forEach((r, i) => {
      expect(r.state).toBe('END');
      expect(r.result).toEqual({ i });
      expect(r.attempts).toBe(1);
      expect(r.completions).toBe(1);
    });
    const perWorker = new Map<string, number>();
    for (const r of records) perWorker.set(r.worker!, (perWorker.get(r.worker!) ?? 0) + 1);
    console.log(`500 echo tasks per worker: ${JSON.stringify(Object.fromEntries(perWorker))}`);
    expect([...perWorker.keys()].sort()).toEqual(['flow-w1', 'flow-w2']);
    for (const n of perWorker.values()) expect(n).toBeGreaterThan(50);
  });

  test('a submitted task exists as QUEUED before any distributor sees it', async () => {
    // A name no worker has: no distributor can assign it, yet the record already exists.
    const id = await client.submit('nobody-has-this', { early: true });
    const first = await client.status(id);
    expect(first).toMatchObject({ state: 'QUEUED', attempts: 0, epoch: 0, name: 'nobody-has-this' });
    await client.cancel(id);
  });
});
