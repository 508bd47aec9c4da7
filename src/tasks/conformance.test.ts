// The task engine's claiming design, proven the same on SQLite and PostgreSQL: claims, leases,
// fencing, retries, schedules, timeouts and shutdown. Workers are separate `createTasks` instances
// on their own database handles (another process's view); time is a manual clock wherever the
// engine reads it.
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { it, type TestContext } from 'node:test';
import { SelectQueryNode, TableNode, type KyselyPlugin, type QueryId } from 'kysely';
import { z } from 'zod';
import { LatchkeyError, manualClock, type Clock } from '../core/index.js';
import type { DatabaseHandle, DialectName } from '../db/index.js';
import { createTestDatabase, eachDialect, type TestDatabase } from '../../test/support/databases.js';
import { createTasks, type Tasks, type TasksOptions, type TaskRunContext } from './index.js';

const T0 = new Date('2030-01-01T10:00:00.000Z');

interface Gate {
  promise: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** Resolves once `condition` holds; fails after a generous ceiling (a hang, not a slow machine). */
async function waitFor(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

interface Harness {
  tdb: TestDatabase;
  handle: DatabaseHandle;
  clock: ReturnType<typeof manualClock>;
  /** A worker on its own database handle, with its own clock unless given this one. */
  worker(options?: Partial<TasksOptions> & { clock?: Clock }): Tasks;
  rows(): Promise<number>;
}

async function harness(t: TestContext, dialect: DialectName): Promise<Harness> {
  const tdb = await createTestDatabase(dialect);
  const handle = await tdb.openMigrated();
  const clock = manualClock(T0);
  const workers: Tasks[] = [];
  t.after(async () => {
    for (const w of workers) await w.stop();
    await tdb.dispose();
  });
  return {
    tdb,
    handle,
    clock,
    worker(options = {}) {
      // SQLite: one process, one handle (better-sqlite3 waits for the write lock synchronously, so
      // two handles in one process would block each other); PostgreSQL: a pool per worker.
      const own = dialect === 'sqlite' ? handle : tdb.open();
      const w = createTasks({ shutdownGraceMs: 100, ...options, handle: options.handle ?? own, clock: options.clock ?? clock });
      workers.push(w);
      return w;
    },
    async rows() {
      const row = await handle.db.selectFrom('tasks').select(({ fn }) => fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}

const echoParams = z.strictObject({ label: z.string().max(100), count: z.number().int().min(0).optional() });

await eachDialect('task engine', (dialect) => {
  it('claims a due task once, runs it with its params, slot and idempotency key, and records the outcome', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    const seen: Array<TaskRunContext<z.infer<typeof echoParams>>> = [];
    w.register({ type: 'echo', paramsSchema: echoParams, run: (ctx) => void seen.push(ctx) });
    const task = await w.schedule({ type: 'echo', params: { label: 'hello' }, owner: { tenantId: 'ten_a', userId: 'usr_a' } });
    assert.equal(task.status, 'scheduled');
    assert.equal(task.nextRunAt, T0.toISOString());

    assert.equal(await w.runner.claimAndRun(), 1);
    await w.runner.idle();
    assert.equal(await w.runner.claimAndRun(), 0, 'a finished one-off task is never claimed again');
    assert.equal(seen.length, 1);
    const ctx = seen[0]!;
    assert.deepEqual(ctx.params, { label: 'hello' });
    assert.equal(ctx.idempotencyKey, `${task.id}@${T0.toISOString()}`);
    assert.equal(ctx.attempt, 1);
    assert.deepEqual(ctx.owner, { tenantId: 'ten_a', userId: 'usr_a' });
    assert.equal(ctx.signal.aborted, false);

    const done = await w.get(task.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.nextRunAt, null);
    assert.equal(done.lastOutcome, 'succeeded');
    assert.equal(done.lastError, null);
    assert.deepEqual(
      done.runs.map((r) => [r.outcome, r.attempt, r.slot]),
      [['succeeded', 1, T0.toISOString()]],
    );
  });

  it('wakes a started worker at once when a task is scheduled (NOTIFY from another process on PostgreSQL, its own writes on SQLite)', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker({ pollIntervalMs: 3600_000 });
    const ran = gate();
    w.register({ type: 'ping', paramsSchema: z.object({}), run: () => ran.open() });
    await w.start();
    // The first poll found nothing; the next is an hour away.
    const scheduler = h.handle.supportsNotify ? h.worker() : w;
    if (scheduler !== w) scheduler.register({ type: 'ping', paramsSchema: z.object({}), run: () => {} });
    const task = await scheduler.schedule({ type: 'ping' });
    await ran.promise;
    await waitFor(async () => (await w.get(task.id)).status === 'succeeded', 'the run to be recorded');
  });

  it('never claims a task before it is due, while disabled, or of a type the worker does not know', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    let runs = 0;
    w.register({ type: 'count', paramsSchema: z.object({}), run: () => void runs++ });
    const later = await w.schedule({ type: 'count', schedule: { at: '2030-01-01T11:00:00+01:00' } });
    assert.equal(later.nextRunAt, '2030-01-01T10:00:00.000Z');
    const future = await w.schedule({ type: 'count', schedule: { at: '2030-01-01T12:00:00Z' } });
    const disabled = await w.schedule({ type: 'count', enabled: false });

    const other = h.worker();
    other.register({ type: 'other', paramsSchema: z.object({}), run: () => {} });
    assert.equal(await other.runner.claimAndRun(), 0, 'a worker claims only the types it registered');

    assert.equal(await w.runner.claimAndRun(), 1, 'only the task due now');
    await w.runner.idle();
    assert.equal((await w.get(later.id)).status, 'succeeded');
    assert.equal((await w.get(future.id)).status, 'scheduled');
    assert.equal((await w.get(disabled.id)).status, 'scheduled');

    h.clock.set(new Date('2030-01-01T12:00:00Z'));
    assert.equal(await w.runner.claimAndRun(), 1);
    await w.runner.idle();
    assert.equal((await w.setEnabled(disabled.id, true)).enabled, true);
    assert.equal(await w.runner.claimAndRun(), 1);
    await w.runner.idle();
    assert.equal(runs, 3);
  });

  it('lets two workers claim 40 due tasks at once without running any twice', async (t) => {
    const h = await harness(t, dialect);
    const ran = new Map<string, number>();
    const workers = [h.worker({ concurrency: 4 }), h.worker({ concurrency: 4 })];
    for (const w of workers) {
      w.register({
        type: 'mark',
        paramsSchema: z.object({}),
        run: async ({ taskId }) => {
          ran.set(taskId, (ran.get(taskId) ?? 0) + 1);
          await new Promise((resolve) => setImmediate(resolve));
        },
      });
    }
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await workers[0]!.schedule({ type: 'mark' })).id);
    const drain = async (w: Tasks) => {
      for (;;) {
        const claimed = await w.runner.claimAndRun();
        if (claimed === 0 && w.runner.runningCount === 0) return;
        if (claimed === 0) await w.runner.idle();
      }
    };
    await Promise.all(workers.map(drain));
    assert.deepEqual([...ran.keys()].sort(), [...ids].sort());
    assert.ok([...ran.values()].every((n) => n === 1), 'each task ran exactly once');
  });

  it('runs a task again once the lease of a worker that died has expired, with the same idempotency key', async (t) => {
    const h = await harness(t, dialect);
    const keys: string[] = [];
    const hang = gate();
    t.after(() => hang.open());
    // a stops heartbeating (its heartbeat is far off), as a process that died would.
    const a = h.worker({ heartbeatMs: 3600_000 - 1, leaseMs: 3600_000 });
    a.register({
      type: 'job',
      paramsSchema: z.object({}),
      run: async (ctx) => {
        keys.push(ctx.idempotencyKey);
        await hang.promise;
      },
    });
    const b = h.worker();
    b.register({ type: 'job', paramsSchema: z.object({}), run: (ctx) => void keys.push(ctx.idempotencyKey) });
    const task = await b.schedule({ type: 'job' });

    assert.equal(await a.runner.claimAndRun(), 1);
    assert.equal(await b.runner.claimAndRun(), 0, 'a held lease is not claimed');
    h.clock.advance(3600_000 - 1);
    assert.equal(await b.runner.claimAndRun(), 0, 'not before the lease ends');
    h.clock.advance(1);
    assert.equal(await b.runner.claimAndRun(), 1, 'the expired lease is taken over');
    await b.runner.idle();
    const view = await b.get(task.id);
    assert.equal(view.status, 'succeeded');
    assert.deepEqual(
      view.runs.map((r) => [r.outcome, r.attempt]),
      [
        ['succeeded', 2],
        ['lease_expired', 1],
      ],
    );
    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1], 'both attempts of the slot share the idempotency key');
  });

  it('takes an expired lease over within a second even while due tasks would fill every claim', async (t) => {
    const h = await harness(t, dialect);
    const hang = gate();
    t.after(() => hang.open());
    const a = h.worker({ heartbeatMs: 60_000 - 1, leaseMs: 60_000 });
    a.register({ type: 'job', paramsSchema: z.object({}), run: () => hang.promise });
    const b = h.worker({ concurrency: 2 });
    let retried = false;
    b.register({ type: 'job', paramsSchema: z.object({}), run: () => void (retried = true) });
    b.register({ type: 'fill', paramsSchema: z.object({}), run: () => {} });
    const job = await b.schedule({ type: 'job' });
    assert.equal(await a.runner.claimAndRun(), 1);
    // Every 200 ms two more due tasks join the backlog and b claims with room for 2: there is
    // always more due work than room. a's lease ends at step 300 (60 s).
    let step = 0;
    for (; step < 400 && !retried; step++) {
      for (let i = 0; i < 3; i++) await b.schedule({ type: 'fill' });
      h.clock.advance(200);
      await b.runner.claimAndRun();
      await b.runner.idle();
    }
    assert.ok(retried, 'the expired lease was taken over');
    assert.ok(step >= 300 && step <= 306, `taken over at step ${step}, within a second of the lease's end`);
    const view = await b.get(job.id);
    assert.equal(view.status, 'succeeded');
    assert.deepEqual(
      view.runs.map((r) => r.outcome),
      ['succeeded', 'lease_expired'],
    );
    const waiting = await h.handle.db.selectFrom('tasks').select('id').where('type', '=', 'fill').where('status', '=', 'scheduled').execute();
    assert.ok(waiting.length > 2, 'due tasks were still waiting when the expired lease was taken');
  });

  it('refuses the completion of a worker whose lease was taken over (fencing), and aborts its run', async (t) => {
    const h = await harness(t, dialect);
    const late = gate();
    let staleSignal: AbortSignal | undefined;
    // Worker a's heartbeat is frequent, but on a clock an hour behind b's: b sees a's lease as expired.
    const a = h.worker({ heartbeatMs: 20, leaseMs: 30_000 });
    a.register({
      type: 'job',
      paramsSchema: z.object({}),
      maxAttempts: 3,
      run: async ({ signal }) => {
        staleSignal = signal;
        await late.promise;
      },
    });
    const ahead = manualClock(new Date(T0.getTime() + 3600_000));
    const b = h.worker({ clock: ahead });
    b.register({
      type: 'job',
      paramsSchema: z.object({}),
      maxAttempts: 3,
      run: () => {
        throw new LatchkeyError('provider_unavailable', 'The provider did not answer.');
      },
    });
    const task = await a.schedule({ type: 'job' });
    assert.equal(await a.runner.claimAndRun(), 1);
    assert.equal(await b.runner.claimAndRun(), 1);
    await b.runner.idle();
    // a's next heartbeat finds another claim's token: its run is aborted.
    await waitFor(() => staleSignal?.aborted === true, 'the stale run to be aborted');
    assert.equal((staleSignal?.reason as Error).name, 'AbortError');
    late.open();
    await a.runner.idle();
    const view = await a.get(task.id);
    assert.equal(view.status, 'scheduled', "b's failure stands: a retry is due");
    assert.equal(view.lastError?.code, 'provider_unavailable');
    assert.deepEqual(
      view.runs.map((r) => r.outcome),
      ['failed', 'lease_expired'],
      "a's late success is not recorded",
    );
  });

  it("fences a run's progress and transaction: a worker whose lease was taken over writes nothing", async (t) => {
    const h = await harness(t, dialect);
    const late = gate();
    const staleErrors: unknown[] = [];
    let staleWrote = false;
    const a = h.worker({ heartbeatMs: 20_000, leaseMs: 30_000 });
    a.register({
      type: 'job',
      paramsSchema: z.object({}),
      run: async ({ progress, transaction }) => {
        await progress({ by: 'a', done: 0 });
        await late.promise;
        await progress({ by: 'a', done: 1 }).catch((err: unknown) => staleErrors.push(err));
        await transaction(async () => {
          staleWrote = true;
        }).catch((err: unknown) => staleErrors.push(err));
      },
    });
    const b = h.worker({ clock: manualClock(new Date(T0.getTime() + 3600_000)) });
    b.register({
      type: 'job',
      paramsSchema: z.object({}),
      run: async ({ progress, transaction, taskId }) => {
        await progress({ by: 'b', done: 1, total: 1 });
        const held = await transaction(async (db) => (await db.selectFrom('tasks').select('status').where('id', '=', taskId).executeTakeFirstOrThrow()).status);
        assert.equal(held, 'running');
      },
    });
    const task = await a.schedule({ type: 'job' });
    assert.equal(await a.runner.claimAndRun(), 1);
    await waitFor(async () => (await a.get(task.id)).progress !== null, "a's first progress");
    assert.deepEqual((await a.get(task.id)).progress, { by: 'a', done: 0 });
    assert.equal(await b.runner.claimAndRun(), 1);
    await b.runner.idle();
    late.open();
    await waitFor(() => staleErrors.length === 2, "a's late writes to be refused");
    await a.runner.idle();
    assert.ok(staleErrors.every((err) => err instanceof LatchkeyError && err.code === 'conflict'), String(staleErrors));
    assert.equal(staleWrote, false, "a's transaction never ran its body");
    const view = await a.get(task.id);
    assert.equal(view.status, 'succeeded');
    assert.deepEqual(view.progress, { by: 'b', done: 1, total: 1 }, "b's progress stands, kept after the run");
  });

  it('refuses a stale completion even when the stale run finishes before noticing', async (t) => {
    const h = await harness(t, dialect);
    const late = gate();
    const a = h.worker({ heartbeatMs: 3600_000 - 1, leaseMs: 3600_000 });
    a.register({ type: 'job', paramsSchema: z.object({}), run: () => late.promise });
    const b = h.worker({ clock: manualClock(new Date(T0.getTime() + 2 * 3600_000)) });
    const running = gate();
    b.register({ type: 'job', paramsSchema: z.object({}), run: () => running.promise });
    const task = await a.schedule({ type: 'job' });
    assert.equal(await a.runner.claimAndRun(), 1);
    assert.equal(await b.runner.claimAndRun(), 1);
    // a finishes while b still holds the task: a's success must not end b's claim.
    late.open();
    await a.runner.idle();
    const during = await a.get(task.id);
    assert.equal(during.status, 'running');
    assert.deepEqual(
      during.runs.map((r) => r.outcome),
      ['lease_expired'],
    );
    running.open();
    await b.runner.idle();
    const after = await a.get(task.id);
    assert.equal(after.status, 'succeeded');
    assert.deepEqual(
      after.runs.map((r) => [r.outcome, r.attempt]),
      [
        ['succeeded', 2],
        ['lease_expired', 1],
      ],
    );
  });

  it('keeps the lease of a running task by its heartbeat', async (t) => {
    const h = await harness(t, dialect);
    const hold = gate();
    const a = h.worker({ heartbeatMs: 20, leaseMs: 30_000 });
    a.register({ type: 'job', paramsSchema: z.object({}), run: () => hold.promise });
    const b = h.worker();
    b.register({ type: 'job', paramsSchema: z.object({}), run: () => {} });
    const task = await a.schedule({ type: 'job' });
    assert.equal(await a.runner.claimAndRun(), 1);
    h.clock.advance(25_000);
    const leaseEnd = async () => (await h.handle.db.selectFrom('tasks').select('lease_expires_at').where('id', '=', task.id).executeTakeFirstOrThrow()).lease_expires_at;
    await waitFor(async () => (await leaseEnd()) === new Date(T0.getTime() + 55_000).toISOString(), 'a heartbeat');
    h.clock.advance(10_000);
    assert.equal(await b.runner.claimAndRun(), 0, 'the lease was extended past its first end');
    hold.open();
    await a.runner.idle();
    assert.equal((await a.get(task.id)).status, 'succeeded');
  });

  it('gives a slot up after maxAttempts attempts that all died with their worker', async (t) => {
    const h = await harness(t, dialect);
    const hang = gate();
    t.after(() => hang.open());
    const a = h.worker({ heartbeatMs: 3600_000 - 1, leaseMs: 3600_000 });
    a.register({ type: 'job', paramsSchema: z.object({}), maxAttempts: 1, run: () => hang.promise });
    let ran = false;
    const b = h.worker({ clock: manualClock(new Date(T0.getTime() + 2 * 3600_000)) });
    b.register({ type: 'job', paramsSchema: z.object({}), maxAttempts: 1, run: () => void (ran = true) });
    const task = await a.schedule({ type: 'job' });
    assert.equal(await a.runner.claimAndRun(), 1);
    assert.equal(await b.runner.claimAndRun(), 1);
    await b.runner.idle();
    assert.equal(ran, false, 'an attempt beyond maxAttempts is not run');
    const view = await b.get(task.id);
    assert.equal(view.status, 'failed');
    assert.equal(view.lastError?.code, 'attempts_exhausted');
  });

  it('retries a failing task with exponential backoff and jitter, then fails it after maxAttempts', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    const keys = new Set<string>();
    const secret = `token=${randomBytes(12).toString('hex')}`;
    w.register({
      type: 'flaky',
      paramsSchema: z.object({}),
      maxAttempts: 3,
      backoff: { base: '1s', max: '1m' },
      run: ({ idempotencyKey, attempt }) => {
        keys.add(idempotencyKey);
        if (attempt === 3) throw new Error(`upstream said ${secret}`);
        throw new LatchkeyError('provider_unavailable', 'The provider did not answer.');
      },
    });
    const task = await w.schedule({ type: 'flaky' });
    const expectRetry = async (low: number, high: number) => {
      assert.equal(await w.runner.claimAndRun(), 1);
      await w.runner.idle();
      const view = await w.get(task.id);
      assert.equal(view.status, 'scheduled');
      assert.equal(view.lastError?.code, 'provider_unavailable');
      const wait = Date.parse(view.nextRunAt ?? '') - h.clock.now().getTime();
      assert.ok(wait >= low && wait <= high, `retry in ${wait} ms, expected ${low} to ${high}`);
      h.clock.advance(wait - 1);
      assert.equal(await w.runner.claimAndRun(), 0, 'not before the backoff ends');
      h.clock.advance(1);
    };
    await expectRetry(500, 1000);
    await expectRetry(1000, 2000);
    assert.equal(await w.runner.claimAndRun(), 1);
    await w.runner.idle();
    const failed = await w.get(task.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.nextRunAt, null);
    assert.equal(failed.lastError?.code, 'task_failed');
    assert.ok(!JSON.stringify(failed).includes(secret), "an error's own message, which may hold a secret, is not stored");
    assert.deepEqual(
      failed.runs.map((r) => [r.outcome, r.attempt]),
      [
        ['failed', 3],
        ['failed', 2],
        ['failed', 1],
      ],
    );
    assert.equal(keys.size, 1, 'retries of one slot share its idempotency key');
  });

  it('runs a cron task once for its missed slots, not once per slot, and reschedules from now', async (t) => {
    const h = await harness(t, dialect);
    h.clock.set(new Date('2030-01-01T10:30:00Z'));
    const w = h.worker();
    const slots: string[] = [];
    w.register({ type: 'hourly', paramsSchema: z.object({}), run: ({ slot }) => void slots.push(slot.toISOString()) });
    const task = await w.schedule({ type: 'hourly', schedule: { cron: '0 * * * *' } });
    assert.equal(task.nextRunAt, '2030-01-01T11:00:00.000Z');
    assert.equal(await w.runner.claimAndRun(), 0);

    h.clock.set(new Date('2030-01-01T15:45:00Z'));
    assert.equal(await w.runner.claimAndRun(), 1);
    await w.runner.idle();
    assert.equal(await w.runner.claimAndRun(), 0, 'four missed slots run once');
    let view = await w.get(task.id);
    assert.equal(view.status, 'scheduled');
    assert.equal(view.nextRunAt, '2030-01-01T16:00:00.000Z');

    h.clock.set(new Date('2030-01-01T16:00:00Z'));
    assert.equal(await w.runner.claimAndRun(), 1);
    await w.runner.idle();
    assert.deepEqual(slots, ['2030-01-01T11:00:00.000Z', '2030-01-01T16:00:00.000Z']);
    view = await w.get(task.id);
    assert.equal(view.nextRunAt, '2030-01-01T17:00:00.000Z');
    assert.equal(view.attempts, 0);
  });

  it('keeps an interval task on its phase, follows a cron time zone, and moves a recurring task on after its last attempt fails', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    w.register({ type: 'tick', paramsSchema: z.object({}), run: () => {} });
    w.register({
      type: 'broken',
      paramsSchema: z.object({}),
      maxAttempts: 1,
      run: () => {
        throw new LatchkeyError('provider_unavailable', 'The provider did not answer.');
      },
    });
    const every = await w.schedule({ type: 'tick', schedule: { every: '10m' } });
    assert.equal(every.nextRunAt, T0.toISOString(), 'an interval task runs at once first');
    const paris = await w.schedule({ type: 'tick', schedule: { cron: '0 9 * * *', timezone: 'Europe/Paris' } });
    assert.equal(paris.nextRunAt, '2030-01-02T08:00:00.000Z');
    const broken = await w.schedule({ type: 'broken', schedule: { every: 60_000 } });

    assert.equal(await w.runner.claimAndRun(), 2);
    await w.runner.idle();
    assert.equal((await w.get(every.id)).nextRunAt, '2030-01-01T10:10:00.000Z');
    const afterFailure = await w.get(broken.id);
    assert.equal(afterFailure.status, 'scheduled');
    assert.equal(afterFailure.nextRunAt, '2030-01-01T10:01:00.000Z');
    assert.equal(afterFailure.attempts, 0);
    assert.equal(afterFailure.lastError?.code, 'provider_unavailable');

    h.clock.set(new Date('2030-01-01T11:05:00Z'));
    assert.equal(await w.runner.claimAndRun(), 2);
    await w.runner.idle();
    assert.equal(await w.runner.claimAndRun(), 0);
    assert.equal((await w.get(every.id)).nextRunAt, '2030-01-01T11:10:00.000Z');
  });

  it('aborts a run past its timeout through its signal, even one that ignores the signal', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    let reason: unknown;
    w.register({
      type: 'slow',
      paramsSchema: z.object({}),
      timeout: 50,
      maxAttempts: 2,
      run: async ({ signal }) => {
        await untilAborted(signal);
        reason = signal.reason;
      },
    });
    w.register({ type: 'deaf', paramsSchema: z.object({}), timeout: 50, maxAttempts: 1, run: () => new Promise<void>(() => {}) });
    const slow = await w.schedule({ type: 'slow' });
    const deaf = await w.schedule({ type: 'deaf' });
    assert.equal(await w.runner.claimAndRun(), 2);
    await w.runner.idle();
    assert.equal((reason as Error).name, 'TimeoutError');
    const slowView = await w.get(slow.id);
    assert.equal(slowView.status, 'scheduled', 'a timed-out attempt is retried');
    assert.equal(slowView.lastOutcome, 'timed_out');
    assert.equal(slowView.lastError?.code, 'timeout');
    const deafView = await w.get(deaf.id);
    assert.equal(deafView.status, 'failed');
    assert.equal(deafView.runs[0]?.outcome, 'timed_out');
  });

  it('shuts down gracefully: stops claiming, lets running tasks finish within the bound, releases the rest', async (t) => {
    const h = await harness(t, dialect);
    const quick = gate();
    let stuckSignal: AbortSignal | undefined;
    const w = h.worker({ shutdownGraceMs: 300, pollIntervalMs: 20 });
    w.register({ type: 'quick', paramsSchema: z.object({}), run: () => quick.promise });
    w.register({
      type: 'stuck',
      paramsSchema: z.object({}),
      run: ({ signal }) => {
        stuckSignal = signal;
        return new Promise<void>(() => {});
      },
    });
    const q = await w.schedule({ type: 'quick' });
    const s = await w.schedule({ type: 'stuck' });
    await w.start();
    await waitFor(() => w.runner.runningCount === 2, 'both tasks to run');

    const stopping = w.stop();
    const late = await w.schedule({ type: 'quick' });
    quick.open();
    await stopping;
    assert.equal(w.runner.runningCount, 0);
    assert.equal((await w.get(q.id)).status, 'succeeded', 'a task that finishes within the bound completes');
    assert.equal((stuckSignal?.reason as Error).name, 'AbortError');
    const released = await w.get(s.id);
    assert.equal(released.status, 'scheduled', 'a task still running past the bound is released');
    assert.equal(released.attempts, 0);
    assert.equal(released.nextRunAt, h.clock.now().toISOString());
    assert.equal((await w.get(late.id)).status, 'scheduled', 'nothing is claimed once stopping');

    const next = h.worker();
    next.register({ type: 'stuck', paramsSchema: z.object({}), run: () => {} });
    next.register({ type: 'quick', paramsSchema: z.object({}), run: () => {} });
    assert.equal(await next.runner.claimAndRun(), 2, 'released tasks are claimed at once, not after their lease');
    await next.runner.idle();
    assert.equal((await next.get(s.id)).runs[0]?.attempt, 1);
  });

  it('refuses bad input with one clear error and stores nothing', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    w.register({ type: 'echo', paramsSchema: echoParams, run: () => {} });
    const refuse = async (input: unknown, code: string, message: RegExp) => {
      await assert.rejects(
        () => w.schedule(input as Parameters<Tasks['schedule']>[0]),
        (err: unknown) => {
          assert.ok(err instanceof LatchkeyError, String(err));
          assert.equal(err.code, code);
          assert.match(err.message, message);
          assert.ok(!err.message.includes('\n'));
          return true;
        },
      );
    };
    await refuse({ type: 'echo', params: { label: 42 } }, 'validation_failed', /^The task is invalid: "params\.label" /);
    await refuse({ type: 'echo', params: { label: 'x', extra: true } }, 'validation_failed', /^The task is invalid: "params"/);
    await refuse({ type: 'echo' }, 'validation_failed', /^The task is invalid: "params\.label" /);
    await refuse({ type: 'echo', params: { label: 'a\u0000b' } }, 'validation_failed', /"params\.label" must not contain a NUL character/);
    await refuse({ type: 'echo', params: { ['k\u0000']: 'x', label: 'x' } }, 'validation_failed', /NUL/);
    await refuse({ type: 'ec\u0000ho', params: { label: 'x' } }, 'validation_failed', /"type" must not contain a NUL character/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { cron: '0 * * * *\u0000' } }, 'validation_failed', /NUL/);
    await refuse({ type: 'echo', params: { label: 'x'.repeat(100_000) } }, 'payload_too_large', /^The task params are too large/);
    w.register({ type: 'anything', paramsSchema: z.record(z.string(), z.unknown()), run: () => {} });
    await refuse({ type: 'anything', params: { blob: 'x'.repeat(70_000) } }, 'payload_too_large', /at most 65536 bytes/);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 100; i++) deep = { deep };
    await refuse({ type: 'anything', params: deep }, 'validation_failed', /nested more than/);
    await refuse({ type: 'nope', params: {} }, 'validation_failed', /"type" must be a registered task type/);
    await refuse({ type: 'x'.repeat(10_000), params: {} }, 'validation_failed', /"type"/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { cron: 'every tuesday' } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { cron: '0 0 30 2 *' } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { cron: '0 * * * *', timezone: 'Mars/Olympus' } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { every: '0s' } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { every: 'banana' } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { every: 'x'.repeat(1_000_000) } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { at: 'tomorrow' } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, schedule: { at: '2030-01-01T00:00:00Z', every: '1h' } }, 'validation_failed', /"schedule/);
    await refuse({ type: 'echo', params: { label: 'x' }, owner: { tenantId: '' } }, 'validation_failed', /"owner\.tenantId"/);
    await refuse({ type: 'echo', params: { label: 'x' }, enabled: 'yes' }, 'validation_failed', /"enabled" must be true or false/);
    await refuse(null, 'validation_failed', /^The task is invalid/);
    assert.equal(await h.rows(), 0, 'nothing was stored');
    assert.deepEqual((await w.list()).tasks, []);
  });

  it("answers another tenant's task exactly like an unknown one, and changes nothing", async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    w.register({ type: 'echo', paramsSchema: echoParams, run: () => {} });
    const task = await w.schedule({ type: 'echo', params: { label: 'mine' }, owner: { tenantId: 'ten_a', userId: null } });
    const other = { tenantId: 'ten_b' };
    const notFound = (err: unknown) => err instanceof LatchkeyError && err.code === 'not_found' && err.message === `No task with id ${JSON.stringify(task.id)} exists.`;
    await assert.rejects(() => w.get(task.id, other), notFound);
    await assert.rejects(() => w.runNow(task.id, other), notFound);
    await assert.rejects(() => w.setEnabled(task.id, false, other), notFound);
    await assert.rejects(() => w.remove(task.id, other), notFound);
    await assert.rejects(
      () => w.get('tsk_unknown'),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'not_found',
    );
    assert.deepEqual((await w.list(other)).tasks, []);
    for (const bad of [`${task.id}\u0000`, 'x'.repeat(100_000)]) {
      await assert.rejects(
        () => w.get(bad),
        (err: unknown) => err instanceof LatchkeyError && err.code === 'not_found',
      );
      await assert.rejects(
        () => w.remove(bad),
        (err: unknown) => err instanceof LatchkeyError && err.code === 'not_found',
      );
    }
    await assert.rejects(
      () => w.get(task.id, { tenantId: 'ten_a\u0000' }),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'not_found',
    );
    await assert.rejects(
      () => w.list({ type: 'echo\u0000' }),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'validation_failed',
    );
    const unchanged = await w.get(task.id, { tenantId: 'ten_a' });
    assert.equal(unchanged.enabled, true);
    assert.equal(unchanged.updatedAt, task.updatedAt);
    assert.deepEqual(
      (await w.list({ tenantId: 'ten_a' })).tasks.map((v) => v.id),
      [task.id],
    );
  });

  it('fails a task whose stored params were tampered with, without running it or retrying', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    let runs = 0;
    w.register({ type: 'echo', paramsSchema: echoParams, run: () => void runs++ });
    const wrongShape = await w.schedule({ type: 'echo', params: { label: 'x' } });
    const notJson = await w.schedule({ type: 'echo', params: { label: 'y' } });
    await h.handle.db.updateTable('tasks').set({ params: '{"label":{"$gt":""}}' }).where('id', '=', wrongShape.id).execute();
    await h.handle.db.updateTable('tasks').set({ params: '{"label":' }).where('id', '=', notJson.id).execute();
    assert.equal(await w.runner.claimAndRun(), 2);
    await w.runner.idle();
    assert.equal(runs, 0);
    const first = await w.get(wrongShape.id);
    assert.equal(first.status, 'failed');
    assert.equal(first.lastError?.code, 'invalid_params');
    assert.equal(first.attempts, 1);
    const second = await w.get(notJson.id);
    assert.equal(second.params, null);
    assert.equal(second.status, 'failed');
    assert.equal(second.lastError?.code, 'invalid_params');
  });

  it('keeps a bounded history of runs, newest first', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker({ historyLimit: 3 });
    w.register({ type: 'tick', paramsSchema: z.object({}), run: () => {} });
    const task = await w.schedule({ type: 'tick', schedule: { every: '1m' } });
    for (let i = 0; i < 5; i++) {
      assert.equal(await w.runner.claimAndRun(), 1);
      await w.runner.idle();
      h.clock.advance(60_000);
    }
    const view = await w.get(task.id);
    assert.deepEqual(
      view.runs.map((r) => r.slot),
      ['2030-01-01T10:04:00.000Z', '2030-01-01T10:03:00.000Z', '2030-01-01T10:02:00.000Z'],
    );
    const stored = await h.handle.db.selectFrom('task_runs').select('id').where('task_id', '=', task.id).execute();
    assert.equal(stored.length, 3);
  });

  it('shows a task and its runs as of one moment, even when the run finishes between the reads', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker();
    const release = gate();
    w.register({ type: 'hold', paramsSchema: z.object({}), run: () => release.promise });
    const task = await w.schedule({ type: 'hold' });
    assert.equal(await w.runner.claimAndRun(), 1);
    assert.equal((await w.get(task.id)).status, 'running');

    // A reader whose first read of the task row is followed, before it reads the runs, by the run
    // finishing and its outcome committing: the moment a concurrent finish can fall in.
    let afterTaskRead: (() => Promise<void>) | undefined = async () => {
      release.open();
      await w.runner.idle();
    };
    const taskReads = new Set<QueryId>();
    const interleave: KyselyPlugin = {
      transformQuery({ node, queryId }) {
        const from = SelectQueryNode.is(node) ? node.from?.froms[0] : undefined;
        if (from && TableNode.is(from) && from.table.identifier.name === 'tasks') taskReads.add(queryId);
        return node;
      },
      async transformResult({ queryId, result }) {
        const hook = taskReads.has(queryId) ? afterTaskRead : undefined;
        afterTaskRead = hook ? undefined : afterTaskRead;
        if (hook) await hook();
        return result;
      },
    };
    // Its own handle on either database (it only reads, so a second SQLite connection waits for nothing).
    const own = h.tdb.open();
    const reader = h.worker({ handle: { ...own, db: own.db.withPlugin(interleave) } });
    const view = await reader.get(task.id);
    assert.equal(afterTaskRead, undefined, 'the run finished between the reads');
    assert.deepEqual(
      [view.status, view.lastOutcome, view.runs.map((r) => r.outcome)],
      ['succeeded', 'succeeded', ['succeeded']],
    );
  });

  it('runs a task again now in a new slot, refuses while it runs, and removes a running task so that its worker records nothing', async (t) => {
    const h = await harness(t, dialect);
    const w = h.worker({ heartbeatMs: 20 });
    const hold = gate();
    let signal: AbortSignal | undefined;
    w.register({
      type: 'job',
      paramsSchema: z.object({}),
      run: async (ctx) => {
        signal = ctx.signal;
        await hold.promise;
      },
    });
    const task = await w.schedule({ type: 'job', schedule: { at: '2031-01-01T00:00:00Z' } });
    h.clock.advance(1000);
    const now = await w.runNow(task.id);
    assert.equal(now.nextRunAt, h.clock.now().toISOString());
    assert.equal(await w.runner.claimAndRun(), 1);
    await assert.rejects(
      () => w.runNow(task.id),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'conflict',
    );
    await w.remove(task.id);
    await waitFor(() => signal?.aborted === true, 'the removed task to be aborted');
    hold.open();
    await w.runner.idle();
    assert.equal(await h.rows(), 0);
    assert.equal((await h.handle.db.selectFrom('task_runs').selectAll().execute()).length, 0);
  });

  it('ensures a keyed task exists once, however often and by however many workers', async (t) => {
    const h = await harness(t, dialect);
    const workers = [h.worker(), h.worker()];
    for (const w of workers) w.register({ type: 'cleanup', paramsSchema: z.object({}), run: () => {} });
    const views = await Promise.all([...workers, ...workers].map((w) => w.ensure('builtin:cleanup', { type: 'cleanup', schedule: { every: '30m' } })));
    assert.equal(new Set(views.map((v) => v.id)).size, 1);
    assert.equal(views[0]?.key, 'builtin:cleanup');
    assert.equal(await h.rows(), 1);
  });
});
