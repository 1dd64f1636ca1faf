/**
 * A task that SIGKILLs every worker it lands on: each loss is a stall; after max_stalls it is
 * FAILED with an error that says so, and the cluster keeps serving other tasks meanwhile.
 */
import { waitFor } from '../helpers';
import { Cluster } from './cluster';

describe('poison pill', () => {
  const cluster = new Cluster({ label: 'poison', workers: 3 });
  let supervising = true;
  const restarts: string[] = [];
  beforeAll(async () => {
    await cluster.start();
    // Play the process supervisor: restart any worker that died.
    void (async () => {
      while (supervising) {
        for (const [id, p] of cluster.workers) {
          if (!p.running) {
            restarts.push(id);
            cluster.startWorker(id);
          }
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
  });
  afterAll(async () => {
    supervising = false;
    await cluster.stop();
  });

  test('FAILED after max_stalls stalls; other tasks still END', async () => {
    const pill = await cluster.client.submit('crash', {}, { max_stalls: 3 });
    const others = await Promise.all(Array.from({ length: 10 }, (_, i) => cluster.client.submit('echo', { i })));
    const r = await cluster.client.wait(pill, { timeoutMs: 45000 });
    expect(r.state).toBe('FAILED');
    expect(r.stalls).toBe(3);
    expect(r.error).toMatch(/stalled 3 times \(max_stalls 3\)/);
    expect(r.attempts).toBe(3);
    // Each stall was a real worker death, seen by the supervisor.
    await waitFor('three worker deaths', () => restarts.length >= 3, 5000);
    for (const id of others) expect((await cluster.client.wait(id, { timeoutMs: 20000 })).state).toBe('END');
    const after = await cluster.client.submit('echo', { after: true });
    expect((await cluster.client.wait(after, { timeoutMs: 20000 })).state).toBe('END');
  });
});
