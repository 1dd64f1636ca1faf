/**
 * TaskClient.onComplete(name, handler) (the forerunner seed's hooks): every task of that name
 * that reaches a terminal state is delivered at least once, also what ended while the subscriber
 * process was down, and what a subscriber died holding is delivered again.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Proc, REDIS_URL, ROOT, waitFor } from './helpers';
import { Cluster } from './faults/cluster';

const CHILD = join(ROOT, 'test', 'fixtures', 'on-complete-child.js');

function subscriber(prefix: string, group: string, consumer: string, env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [CHILD, REDIS_URL, prefix, 'echo', group, consumer], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Proc(`sub-${consumer}`, child);
}

const delivered = (p: Proc): string[] => [...p.output.matchAll(/delivered (\S+) (\S+)/g)].map((m) => m[1]!);

describe('onComplete', () => {
  const cluster = new Cluster({ label: 'oncomplete', workers: 1 });
  const subs: Proc[] = [];
  beforeAll(() => cluster.start());
  afterAll(async () => {
    await Promise.all(subs.map((p) => p.stop()));
    await cluster.stop();
  });

  test('every END of the name, also those that ended while the subscriber was down; other names not', async () => {
    const a = subscriber(cluster.prefix, 'g1', 'a');
    subs.push(a);
    await a.waitForOutput(/subscribed/);
    const first = await Promise.all([1, 2, 3].map((n) => cluster.client.submit('echo', { n })));
    await waitFor('3 delivered', () => first.every((id) => delivered(a).includes(id)));

    a.signal('SIGKILL');
    await a.exited;
    const whileDown = await Promise.all([4, 5, 6, 7].map((n) => cluster.client.submit('echo', { n })));
    const other = await cluster.client.submit('fail', {}, { max_attempts: 1 });
    for (const id of [...whileDown, other]) await cluster.client.wait(id, { timeoutMs: 10000 });

    const b = subscriber(cluster.prefix, 'g1', 'b');
    subs.push(b);
    await waitFor('the 4 that ended while it was down', () => whileDown.every((id) => delivered(b).includes(id)), 10000);
    expect(delivered(b)).not.toContain(other);
    // At least once: anything delivered twice was one the killed subscriber had not acknowledged.
    for (const id of delivered(b)) expect([...whileDown, ...first]).toContain(id);
    expect(b.output).toMatch(new RegExp(`delivered ${whileDown[0]} END`));
  });

  test('a subscriber that dies while handling a task: another consumer of the group gets it', async () => {
    const id = `crash-${Date.now()}`;
    const c = subscriber(cluster.prefix, 'g2', 'c', { CRASH_ON: id });
    subs.push(c);
    await c.waitForOutput(/subscribed/);
    await cluster.client.submit('echo', { crash: true }, { id });
    await c.exited;
    expect(delivered(c)).not.toContain(id);
    const d = subscriber(cluster.prefix, 'g2', 'd');
    subs.push(d);
    await waitFor('the task the dead subscriber held', () => delivered(d).includes(id), 10000);
  });
});
