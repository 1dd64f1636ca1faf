/**
 * A watcher written in Python from docs/protocol.md alone (test/python/watch.py: the standard
 * library plus Debian's python3-websockets) gets the same live events as the TypeScript one.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { TaskEvent } from '@taskmesh/common';
import { certFiles, ROOT, SHARE_KEY } from './helpers';
import { collect, expectOrdered, WatchCluster } from './watch-cluster';

/** Debian's interpreter, where apt puts python3-websockets (a pyenv python3 on PATH would not see it). */
const PYTHON = '/usr/bin/python3';

function runPython(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(PYTHON, [join(ROOT, 'test', 'python', 'watch.py'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const t = setTimeout(() => child.kill('SIGKILL'), 30000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('a Python watcher', () => {
  const c = new WatchCluster('watchpy', 1);
  beforeAll(() => c.start());
  afterAll(() => c.stop());

  test('speaks the protocol from docs/protocol.md and receives the same events as the library', async () => {
    const workerId = [...c.workers.keys()][0]!;
    const port = Number((await c.worker(workerId).waitForLog('started')).watch_port);
    const id = await c.client.submit('steps', { n: 10, ms: 80 });
    await c.functionStarted(id);
    const certs = certFiles('watcher');
    const base = [
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--ca',
      certs.ca,
      '--cert',
      certs.cert,
      '--key',
      certs.key,
      '--share-key',
      SHARE_KEY,
      '--id',
      'py-watcher',
      '--task',
      id,
    ];
    const [py, ts] = await Promise.all([runPython(base), collect(c.watcher().watch(id))]);
    expect(py.stderr).toBe('');
    expect(py.code).toBe(0);
    const events = py.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TaskEvent);
    expectOrdered(events);
    expect(events.map(({ seq, type }) => [seq, type])).toEqual(ts.map(({ seq, type }) => [seq, type]));
    expect(events.at(-1)).toMatchObject({ type: 'state', state: 'END', result: { n: 10, attempt: 1 } });

    // The frames it read were `events` frames (it asked for `batch`); without `batch` the worker
    // sends one `event` frame per event, and the events are the same.
    const raw = await runPython([...base, '--raw']);
    expect(raw.stderr).toMatch(/"type":"events","sub":"py1","events":\[/);
    expect(raw.stderr).not.toMatch(/"type":"event","sub"/);
    const single = await runPython([...base, '--no-batch', '--raw']);
    expect(single.code).toBe(0);
    expect(single.stderr).toMatch(/"type":"event","sub":"py1","event":\{/);
    expect(single.stderr).not.toMatch(/"type":"events"/);
    expect(single.stdout).toBe(py.stdout);

    // Resuming with since from Python: only what came after, then the end.
    const resumed = await runPython([...base, '--since', '1:8']);
    const after = resumed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as TaskEvent);
    expect(after[0]).toMatchObject({ seq: 9 });
    expect(after.at(-1)).toMatchObject({ state: 'END' });

    // A wrong share_key is refused (close 4001) before any event.
    const wrong = await runPython([...base.slice(0, -6), '--share-key', 'wrong', '--id', 'py-watcher', '--task', id]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stdout).toBe('');
    expect(wrong.stderr).toMatch(/4001/);
  });
});
