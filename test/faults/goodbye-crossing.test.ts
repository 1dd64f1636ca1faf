/**
 * An assign frame that crosses a worker's goodbye: the worker closes (1001, shutting down) as the
 * frame arrives, so it never runs the attempt the record says it runs. The distributor requeues it
 * as refused, fenced and without a stall, instead of leaving it to go stale and count as a crash
 * (with max_stalls 1 that would fail the task). The worker here is a bare channel that behaves so.
 */
import { readFileSync } from 'node:fs';
import { TaskClient, loadConfig, type Message } from '@taskmesh/common';
import { connect, createLogger } from '@taskmesh/common/internal';
import { Distributor } from '@taskmesh/distributor';
import { certFiles, cleanPrefix, clientConfig, distributorConfig, freePort, randomPrefix, SHARE_KEY, waitFor } from '../helpers';

const pem = (p: string) => readFileSync(p, 'utf8');

describe('an assign frame crossing a goodbye', () => {
  const prefix = randomPrefix('goodbye');
  let d: Distributor;
  let port: number;
  let client: TaskClient;
  beforeAll(async () => {
    port = await freePort();
    d = new Distributor(loadConfig('distributor', distributorConfig(prefix, port)));
    await d.start();
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
  });
  afterAll(async () => {
    await d.close();
    await client.close();
    await cleanPrefix(prefix);
  });

  test('is requeued without a stall, so a max_stalls 1 task is not FAILED', async () => {
    const certs = certFiles('worker');
    const ch = await connect({
      id: 'leaving',
      role: 'worker',
      tls: { key: pem(certs.key), cert: pem(certs.cert), ca: pem(certs.ca) },
      shareKey: SHARE_KEY,
      host: '127.0.0.1',
      port,
      maxPayload: 1 << 20,
      allow: [],
      log: createLogger('worker', { id: 'leaving' }),
    });
    const assigned: string[] = [];
    ch.on('message', (m: Message) => {
      if (m.type !== 'assign') return;
      assigned.push(m.task.id);
      ch.close(1001, 'worker shutting down');
    });
    ch.send({ type: 'register', prefix, tasks: ['echo'], concurrency: 1, running: 0, watch_host: '127.0.0.1', watch_port: 1 });

    const id = await client.submit('echo', { x: 1 }, { max_stalls: 1 });
    await waitFor('the assign frame', async () => assigned.includes(id));
    const back = await waitFor('requeued', async () => {
      const rec = await client.status(id);
      return rec && rec.state !== 'RUNNING' ? rec : null;
    });
    expect(back.state).toBe('QUEUED');
    expect(back.stalls).toBe(0);
    expect(back.epoch).toBe(2); // assigned at 1, requeued at 2
    // A "must not happen" check, well past watch.stale_ms (1500 in the tests): nothing counts it
    // as a stall later either; every look finds it QUEUED with no stall.
    const until = Date.now() + 2500;
    const seen = new Set<string>();
    await waitFor('2.5 s of looks', async () => {
      const rec = await client.status(id);
      seen.add(`${rec?.state} stalls=${rec?.stalls}`);
      return Date.now() > until;
    });
    expect([...seen]).toEqual(['QUEUED stalls=0']);
  });
});
