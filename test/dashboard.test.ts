/**
 * The web dashboard, end to end: a real mesh (distributor, worker and `taskmesh dashboard` as child
 * processes, real Redis, real TLS), the page in headless Chromium driven by playwright-core, and
 * plain HTTP(S) requests for the refusals. Chromium must be installed (`.ci/run` installs it): a
 * missing browser fails these tests, it never skips them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TaskClient, loadConfig } from '@taskmesh/common';
import {
  certFiles,
  cleanPrefix,
  clientConfig,
  distributorConfig,
  freePort,
  randomPrefix,
  redis,
  REDIS_URL,
  ROOT,
  runBin,
  SHARE_KEY,
  spawnBin,
  tmpDir,
  waitFor,
  workerConfig,
  writeConfig,
  type Proc,
} from './helpers';

const TASKS = join(ROOT, 'test', 'fixtures', 'dashboard-tasks.js');
const SCREENSHOT = join(ROOT, 'docs', 'dashboard.png');
const TOKEN = `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`;

function chromiumPath(): string {
  let path = '';
  try {
    path = execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim();
  } catch {
    // handled below
  }
  if (!path || !existsSync(path)) {
    throw new Error('chromium is not installed: the dashboard browser test needs it (apt-get install -y chromium; .ci/run installs it)');
  }
  return path;
}

interface Reply {
  status: number;
  body: string;
}

/** One plain HTTP(S) request, no browser: what curl would send. */
function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; tls?: { key?: Buffer; cert?: Buffer; ca: Buffer } } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const base = { method: opts.method ?? 'GET', headers: opts.headers ?? {}, host: u.hostname, port: u.port, path: u.pathname };
    const onRes = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    };
    const req = opts.tls ? httpsRequest({ ...base, ...opts.tls, servername: 'localhost' }, onRes) : httpRequest(base, onRes);
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard', () => {
  const prefix = randomPrefix('dash');
  const dir = tmpDir('dash');
  const procs: Proc[] = [];
  let client: TaskClient;
  let url = '';
  let browser: Browser | undefined;
  /** Script errors of every page opened: a page that threw is a failure even if it looked right. */
  const pageErrors: string[] = [];

  /** A test whose failure message carries the processes' output. */
  function it(name: string, fn: () => Promise<void>): void {
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof Error) err.message += `\n${procs.map((p) => `----- ${p.name}\n${p.output}`).join('\n')}`;
        throw err;
      }
    });
  }

  function dashboardConfig(extra: Record<string, unknown>): Record<string, unknown> {
    return { id: `dash-${procs.length}`, share_key: SHARE_KEY, ...certFiles('watcher'), redis: { url: REDIS_URL, prefix }, ...extra };
  }

  /** Starts `taskmesh dashboard` (the CLI subcommand) and returns the address it prints. */
  async function startDashboard(name: string, extra: Record<string, unknown>): Promise<string> {
    const port = await freePort();
    const p = spawnBin('taskmesh', ['dashboard', '--config', writeConfig(dir, name, dashboardConfig(extra)), '--port', String(port)], {}, name);
    procs.push(p);
    const m = await p.waitForOutput(/taskmesh dashboard: open (https?:\/\/\S+)/);
    expect(m[1]).toBe(`${(extra.dashboard as { tls?: boolean } | undefined)?.tls ? 'https' : 'http'}://127.0.0.1:${port}/`);
    return m[1]!;
  }

  async function openPage(withToken = true): Promise<Page> {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(withToken ? `${url}#token=${encodeURIComponent(TOKEN)}` : url);
    await page.locator('#conn.on').waitFor({ timeout: 15000 });
    return page;
  }

  /** The done value the page's bar shows for a task, or null while it has none. */
  async function barDone(page: Page, id: string): Promise<number | null> {
    const v = await page
      .locator(`#running tr[data-task="${id}"] .bar`)
      .getAttribute('data-done', { timeout: 1000 })
      .catch(() => null);
    return v ? Number(v) : null;
  }

  beforeAll(async () => {
    // Fail (never skip) when the browser is missing, before starting anything.
    const executablePath = chromiumPath();
    const dport = await freePort();
    procs.push(spawnBin('distributor', ['--config', writeConfig(dir, 'd', distributorConfig(prefix, dport))], {}, 'distributor'));
    procs.push(
      spawnBin('worker', ['--config', writeConfig(dir, 'w', workerConfig(prefix, [dport], { id: 'dash-w1', concurrency: 8 })), '--tasks', TASKS], {}, 'worker'),
    );
    client = new TaskClient(loadConfig('cli', clientConfig(prefix)));
    const r = redis();
    try {
      await waitFor(
        'the distributor and the worker registered',
        async () => (await r.scard(`${prefix}distributors`)) === 1 && (await r.sismember(`${prefix}workers`, 'dash-w1')) === 1,
      );
    } finally {
      r.disconnect();
    }
    url = await startDashboard('dashboard', { dashboard: { token: TOKEN } });
    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'], headless: true });
  });

  afterAll(async () => {
    await browser?.close();
    await Promise.all(procs.map((p) => p.stop()));
    await client?.close();
    await cleanPrefix(prefix);
  });

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  it('cancel and retry without the token, with a wrong one, or from another origin are refused; reading needs none', async () => {
    const id = await client.submit('steps', { n: 400, ms: 100 });
    await waitFor('task running', async () => (await client.status(id))?.state === 'RUNNING');
    for (const action of ['cancel', 'retry']) {
      const none = await send(`${url}api/tasks/${id}/${action}`, { method: 'POST' });
      expect(none.status).toBe(401);
      const wrong = await send(`${url}api/tasks/${id}/${action}`, { method: 'POST', headers: { authorization: 'Bearer not-the-token-at-all' } });
      expect(wrong.status).toBe(403);
      const foreign = await send(`${url}api/tasks/${id}/${action}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' },
      });
      expect(foreign.status).toBe(403);
      // GET never changes state.
      expect((await send(`${url}api/tasks/${id}/${action}`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(405);
    }
    // A foreign host name for a loopback page (DNS rebinding) is refused even for reading.
    expect((await send(`${url}api/state`, { headers: { host: 'evil.example' } })).status).toBe(421);
    const state = await send(`${url}api/state`);
    expect(state.status).toBe(200);
    expect(JSON.parse(state.body)).toMatchObject({ auth: { token: true, certificate: false }, snapshot: { prefix } });
    expect((await client.status(id))?.state).toBe('RUNNING');
    // Authorized, but only a FAILED or CANCELLED task can be retried.
    const early = await send(`${url}api/tasks/${id}/retry`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(early.status).toBe(409);
    expect(JSON.parse(early.body)).toMatchObject({ state: 'RUNNING' });

    // With the token it works: the same request, now authorized.
    const ok = await send(`${url}api/tasks/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ id, state: 'RUNNING' });
    expect((await client.wait(id, { timeoutMs: 10000 })).state).toBe('CANCELLED');
    const again = await send(`${url}api/tasks/${id}/retry`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(again.status).toBe(200);
    await client.cancel(id);
    const unknown = await send(`${url}api/tasks/no-such-task/retry`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(unknown.status).toBe(404);
  });

  it("the page: workers, distributors and queues; a running task's bar advances live; the cancel button cancels it", async () => {
    const page = await openPage();
    await page.locator('#workers tr[data-worker="dash-w1"]').waitFor();
    await expect(page.locator('#distributors tbody tr').count()).resolves.toBe(1);
    await expect(page.locator('#queues tr[data-queue="intake"] .depth').textContent()).resolves.toMatch(/^\d+$/);

    // A refused envelope for the dead list, and a task that fails, with its error.
    const r = redis();
    try {
      await r.lpush(`${prefix}new-task`, '{"name": 42}');
    } finally {
      r.disconnect();
    }
    const failed = await client.submit('fail', { message: 'disk full on /scratch' }, { max_attempts: 1 });
    await page.locator('#dead tbody tr').first().waitFor();
    await expect(page.locator('#dead-count').textContent()).resolves.toBe('(1)');
    await expect(page.locator('#dead tbody tr').first().textContent()).resolves.toContain('{"name": 42}');
    await expect(page.locator(`#failures tr[data-task="${failed}"] .error`).textContent()).resolves.toBe('disk full on /scratch');

    const id = await client.submit('steps', { n: 300, ms: 100 });
    // Two more, so the page (and the screenshot) has company.
    const others = [await client.submit('steps', { n: 60, ms: 250 }), await client.submit('steps', { n: 1000, ms: 40 })];
    await page.locator(`#running tr[data-task="${id}"]`).waitFor();
    const first = await waitFor('a first progress value on the page', () => barDone(page, id));
    const second = await waitFor('the bar to advance', async () => {
      const v = await barDone(page, id);
      return v !== null && v > first ? v : null;
    });
    expect(second).toBeGreaterThan(first);
    await expect(page.locator(`#running tr[data-task="${id}"] .state`).textContent()).resolves.toBe('RUNNING');
    await expect(page.locator('#workers tr[data-worker="dash-w1"]').textContent()).resolves.toContain('steps');
    // A screenshot with the bars well under way (and every one of them drawn).
    await waitFor(
      'the bars to move on',
      async () => ((await barDone(page, id)) ?? 0) >= 20 && (await barDone(page, others[0]!)) !== null && (await barDone(page, others[1]!)) !== null,
    );
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    await page.locator(`#running tr[data-task="${id}"] button.cancel`).click();
    await page.locator(`#running tr[data-task="${id}"][data-state="CANCELLED"]`).waitFor({ timeout: 15000 });
    await expect(page.locator(`#running tr[data-task="${id}"] .state`).textContent()).resolves.toBe('CANCELLED');
    const rec = await client.status(id);
    expect(rec?.state).toBe('CANCELLED');
    // It stopped early: the bar never reached the end.
    expect((await barDone(page, id)) ?? 0).toBeLessThan(300);
    // ... and it is listed with the recent failures, with a retry button.
    await page.locator(`#failures tr[data-task="${id}"] button.retry`).waitFor();
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10000);
    for (const o of others) await client.cancel(o);
    await page.close();
  });

  it('the retry button runs a FAILED task again, and it ends', async () => {
    const page = await openPage();
    // Throws on attempt 1 with a budget of 1: FAILED. A retry is attempt 2, which succeeds.
    const id = await client.submit('flaky', { succeedOn: 2 }, { max_attempts: 1 });
    expect((await client.wait(id, { timeoutMs: 15000 })).state).toBe('FAILED');
    const row = page.locator(`#failures tr[data-task="${id}"]`);
    await row.waitFor();
    await expect(row.locator('.error').textContent()).resolves.toContain('flaky failure on attempt 1');
    await row.locator('button.retry').click();
    // The click's request is asynchronous: wait until the retry is recorded (a second attempt or a
    // state past FAILED), or wait() would return the old FAILED at once.
    await waitFor('the retry recorded', async () => {
      const rec = await client.status(id);
      return rec && (rec.state !== 'FAILED' || rec.attempts > 1) ? rec : null;
    });
    const done = await client.wait(id, { timeoutMs: 15000 });
    expect(done.state).toBe('END');
    expect(done.result).toEqual({ attempt: 2 });
    // No longer a failure on the page.
    await row.waitFor({ state: 'detached', timeout: 15000 });
    await page.close();
  });

  it('the buttons without the token: refused, and the page says so', async () => {
    const page = await openPage(false);
    await expect(page.locator('#auth').isVisible()).resolves.toBe(true);
    const id = await client.submit('steps', { n: 400, ms: 100 });
    const cancel = page.locator(`#running tr[data-task="${id}"] button.cancel`);
    await cancel.waitFor();
    await cancel.click();
    await waitFor('the refusal notice', async () => /cancel refused \(401\)/.test((await page.locator('#notice').textContent()) ?? ''));
    expect((await client.status(id))?.state).toBe('RUNNING');
    // Typing the token in the field is enough.
    await page.locator('#token').fill(TOKEN);
    await cancel.click();
    expect((await client.wait(id, { timeoutMs: 10000 })).state).toBe('CANCELLED');
    await page.close();
  });

  it('with dashboard.tls, a client certificate of the mesh CA may change state; without one it is refused', async () => {
    const tlsUrl = await startDashboard('dashboard-tls', { dashboard: { tls: true } });
    const ca = readFileSync(certFiles('watcher').ca);
    const c = certFiles('client');
    const id = await client.submit('steps', { n: 400, ms: 100 });
    await waitFor('task running', async () => (await client.status(id))?.state === 'RUNNING');
    const bare = await send(`${tlsUrl}api/tasks/${id}/cancel`, { method: 'POST', tls: { ca } });
    expect(bare.status).toBe(401);
    const other = certFiles('worker', 'other');
    const foreign = await send(`${tlsUrl}api/tasks/${id}/cancel`, {
      method: 'POST',
      tls: { ca, key: readFileSync(other.key), cert: readFileSync(other.cert) },
    });
    expect(foreign.status).toBe(401);
    expect((await client.status(id))?.state).toBe('RUNNING');
    const ok = await send(`${tlsUrl}api/tasks/${id}/cancel`, { method: 'POST', tls: { ca, key: readFileSync(c.key), cert: readFileSync(c.cert) } });
    expect(ok.status).toBe(200);
    expect((await client.wait(id, { timeoutMs: 10000 })).state).toBe('CANCELLED');
  });

  it('a bad dashboard key exits 2 with one line naming it', async () => {
    for (const [dashboard, key] of [
      [{ token: 'short' }, 'dashboard.token'],
      [{ port: 70000 }, 'dashboard.port'],
      [{ host: '' }, 'dashboard.host'],
      [{ colour: 'red' }, 'dashboard.colour'],
    ] as const) {
      const r = await runBin('taskmesh', ['dashboard', '--config', writeConfig(dir, 'bad', dashboardConfig({ dashboard }))]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(key);
      // A token is a secret: a refused one is not echoed.
      expect(r.stderr).not.toContain('short');
    }
  });
});
