/** A task that throws is retried with backoff until max_attempts, then FAILED with its error. */
import { waitFor } from '../helpers';
import { Cluster } from './cluster';

describe('retries', () => {
  const cluster = new Cluster({ label: 'retry', workers: 1, distributor: { retry: { backoff_ms: 300, backoff_max_ms: 1000 } } });
  beforeAll(() => cluster.start());
  afterAll(() => cluster.stop());

  test('FAILED after max_attempts runs, with the error, and doubling backoff between runs', async () => {
    const id = await cluster.client.submit('fail', { message: 'disk full' }, { max_attempts: 3 });
    // When each attempt started (its started_at), seen by polling while it runs.
    const starts = new Map<number, number>();
    await waitFor(
      'three attempts',
      async () => {
        const rec = await cluster.record(id);
        if (rec.started_at) starts.set(rec.attempts, rec.started_at);
        return starts.has(3) && rec.state === 'FAILED';
      },
      15000,
      5,
    );
    // backoff_ms 300: 300 ms before the 2nd attempt, 600 ms before the 3rd.
    expect(starts.get(2)! - starts.get(1)!).toBeGreaterThanOrEqual(300);
    expect(starts.get(3)! - starts.get(2)!).toBeGreaterThanOrEqual(600);
    const r = await cluster.client.wait(id, { timeoutMs: 15000 });
    expect(r.state).toBe('FAILED');
    expect(r.error).toBe('disk full');
    expect(r.attempts).toBe(3);
    expect(r.completions).toBe(0);
    // Two backoffs, 300 ms then 600 ms, lie between the first start and the end.
    expect(r.ended_at! - r.created_at!).toBeGreaterThanOrEqual(900);
  });

  test('a task that fails once then succeeds ends END on its second attempt', async () => {
    const id = await cluster.client.submit('flaky', { succeedOn: 2 }, { max_attempts: 3 });
    const r = await cluster.client.wait(id, { timeoutMs: 15000 });
    expect(r.state).toBe('END');
    expect(r.result).toEqual({ attempt: 2 });
    expect(r.attempts).toBe(2);
  });
});
