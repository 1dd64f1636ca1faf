/**
 * A distributor SIGKILLed while 20 tasks run on 3 workers that list two distributors: the workers
 * carry on, the surviving distributor supervises, all 20 end END and none is restarted.
 */
import { Cluster } from './cluster';

describe('distributor SIGKILL', () => {
  const cluster = new Cluster({ label: 'dkill', distributors: 2, workers: 3, worker: { concurrency: 8 } });
  beforeAll(() => cluster.start());
  afterAll(() => cluster.stop());

  test('all 20 running tasks reach END with one attempt each', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => cluster.client.submit('sleep', { ms: 6000, token: i })));
    const running = async () => (await Promise.all(ids.map((id) => cluster.record(id)))).every((r) => r.state === 'RUNNING');
    const { waitFor } = await import('../helpers');
    await waitFor('all 20 RUNNING', running, 15000);
    const records = await Promise.all(ids.map((id) => cluster.record(id)));
    // Kill the distributor that assigned the most of them.
    const counts = new Map<string, number>();
    for (const r of records) counts.set(r.distributor!, (counts.get(r.distributor!) ?? 0) + 1);
    const [victimId] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
    const victim = cluster.distributors.find((d) => d.name === victimId)!;
    expect(victim).toBeDefined();
    victim.signal('SIGKILL');
    await victim.exited;
    const epochs = new Map(records.map((r) => [r.id, r.epoch]));
    const ends = await Promise.all(ids.map((id) => cluster.waitState(id, (r) => r.state === 'END' || r.state === 'FAILED', 'terminal', 20000)));
    for (const r of ends) {
      expect(r.state).toBe('END');
      expect(r.attempts).toBe(1);
      // Not requeued after the kill: the attempt that was running is the one that ended.
      expect(r.epoch).toBe(epochs.get(r.id));
      expect(r.completions).toBe(1);
    }
    // The cluster still takes new work through the surviving distributor.
    const extra = await cluster.client.submit('echo', { after: 'kill' });
    expect((await cluster.client.wait(extra, { timeoutMs: 10000 })).result).toEqual({ after: 'kill' });
  });
});
