/**
 * taskmesh through Redis Sentinel, started by the test (free loopback ports): a primary, one
 * replica and three sentinels (quorum 2). Every process connects through the sentinels
 * (`redis.sentinels`). With 500 tasks in flight the primary goes away, once by a forced
 * `SENTINEL FAILOVER` and once by SIGKILL: every process follows the new primary, and every task
 * ends END exactly once in its record (completions 1), none lost, none stuck.
 *
 * The fault lands mid-churn: the tasks last 1 to 3 s on 400 slots, so ends are being written
 * and queued tasks assigned when the primary goes; writes acknowledged by the old primary and not
 * yet replicated are lost, and the fences (epoch plus assignment id) and the per-worker indexes
 * must make up for it. Half the tasks are state_optional: by SPEC section 4 those keep running
 * through the outage (their distributor still hears the worker); the others are stopped and
 * requeued, which is the worker's rule for a lost Redis, so they run again and complete once.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TaskRecord } from '@taskmesh/common';
import { waitFor, countLogs } from '../helpers';
import { Mesh, SENTINEL_NAME, SentinelSet, withRedis } from './servers';

jest.setTimeout(60000);

const TASKS = 500;
/** Task i sleeps 1000 + (i * 37 % 2000) ms: ends spread over two seconds. */
const sleepMs = (i: number) => 1000 + ((i * 37) % 2000);

async function failoverWithTasksInFlight(label: string, fault: (s: SentinelSet) => Promise<void>): Promise<void> {
  const t0 = Date.now();
  const set = await SentinelSet.start();
  const mesh = new Mesh({
    label,
    prefix: `tmtest:${label}:${randomBytes(4).toString('hex')}:`,
    redis: { sentinels: set.sentinelAddrs, sentinel_name: SENTINEL_NAME },
    distributors: 2,
    workers: 2,
    worker: { concurrency: 200 },
  });
  try {
    await mesh.start();
    console.log(
      `${label}: primary ${set.primary.port}, replica ${set.replica.port}, sentinels ${set.sentinels.map((x) => x.port).join(',')}; mesh up in ${Date.now() - t0} ms`,
    );
    const ids: string[] = [];
    for (let i = 0; i < TASKS; i += 50) {
      ids.push(
        ...(await Promise.all(
          Array.from({ length: Math.min(50, TASKS - i) }, (_, j) =>
            mesh.client.submit('sleep', { ms: sleepMs(i + j), token: i + j }, { state_optional: (i + j) % 2 === 0 }),
          ),
        )),
      );
    }
    // The submits are acknowledged by the primary; make sure the replica has them too, so the test
    // is about what happens to tasks in flight (an unreplicated submit is the producer's window,
    // see docs/failure-model.md).
    await withRedis(set.primary.port, (r) => r.wait(1, 2000));
    // Strike once the churn has begun: slots full, the first ends written, queued tasks being assigned.
    const before = await waitFor(
      '400 RUNNING and the first 10 END',
      async () => {
        const rs = await mesh.records(ids);
        return rs.filter((r) => r.state === 'END').length >= 10 && rs.filter((r) => r.state === 'RUNNING').length >= 300 ? rs : null;
      },
      20000,
      50,
    );
    const inFlight = before.filter((r) => r.state !== 'END').length;
    const faultAt = Date.now();
    await fault(set);
    const switched = Date.now() - faultAt;
    const records = await mesh.allTerminal(ids, 40000);
    const done = Date.now() - faultAt;
    check(records, ids);
    const runs = mesh.runs();
    const attempts = (odd: boolean) => {
      const h = new Map<number, number>();
      records.filter((_, i) => (i % 2 === 1) === odd).forEach((r) => h.set(r.attempts, (h.get(r.attempts) ?? 0) + 1));
      return JSON.stringify(Object.fromEntries(h));
    };
    const totalRuns = [...runs.values()].reduce((a, b) => a + b, 0);
    const count = (msg: RegExp) => [...mesh.workers.values(), ...mesh.distributors].reduce((n, p) => n + countLogs(p.output, msg), 0);
    console.log(
      `${label}: ${inFlight} of ${TASKS} tasks in flight at the fault; sentinels named the new primary ${switched} ms after it; all ${TASKS} END ${done} ms after it; ` +
        `function runs ${totalRuns}; attempts state_optional ${attempts(false)}, others ${attempts(true)}; completions all 1; ` +
        `results refused ${count(/its result is discarded/)}, given back ${count(/gave back a task/)}`,
    );
    // Every process followed the new primary and logged it.
    for (const p of [...mesh.distributors, ...mesh.workers.values()]) expect(p.running).toBe(true);
    // Intake resumed: a task submitted after the failover runs.
    const after = await mesh.client.submit('echo', { after: label });
    expect((await mesh.client.wait(after, { timeoutMs: 15000 })).result).toEqual({ after: label });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${tail(mesh.logs(), 6000)}`, { cause: err });
  } finally {
    // For a post-mortem of a run: TASKMESH_TEST_LOGS=DIR keeps every process's log.
    if (process.env.TASKMESH_TEST_LOGS) writeFileSync(join(process.env.TASKMESH_TEST_LOGS, `${label}.log`), mesh.logs());
    await mesh.stop();
    await set.stop();
  }
}

function check(records: TaskRecord[], ids: string[]): void {
  expect(records.map((r) => r.id)).toEqual(ids);
  const bad = records.filter((r) => r.state !== 'END' || r.completions !== 1);
  expect(bad.map((r) => ({ id: r.id, state: r.state, completions: r.completions, error: r.error }))).toEqual([]);
  // Each record holds its own task's result (the token it was submitted with), not another's.
  records.forEach((r, i) => expect((r.result as { token: number }).token).toBe(i));
}

function tail(s: string, n: number): string {
  return s.length > n ? `...${s.slice(-n)}` : s;
}

describe('Redis Sentinel: a primary, a replica, three sentinels', () => {
  test(`a forced SENTINEL FAILOVER with ${TASKS} tasks in flight: each ends END once, none lost or stuck`, () =>
    failoverWithTasksInFlight('sfail', (s) => s.forceFailover()));

  test(`a SIGKILL of the primary with ${TASKS} tasks in flight: each ends END once, none lost or stuck`, () =>
    failoverWithTasksInFlight('skill', (s) => s.killPrimary()));
});
