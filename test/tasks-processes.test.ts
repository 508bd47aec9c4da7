// The task engine across real processes on ONE PostgreSQL database: two Latchkey processes
// (test/support/tasks-child.ts, each createLatchkey with its task runner started) share the tasks.
// - 1,000 due tasks: every task runs, no slot runs twice (checked in SQL over the log each run
//   writes), both processes take part;
// - `kill -9` of one process while its tasks sleep: once their 2 s lease has expired the other
//   process runs them again, nothing is lost, each task's completion is recorded once, and the
//   killed process's attempts are in the history as `lease_expired`.
// No timed assertion: every wait is for a condition, under a generous ceiling.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, it, type TestContext } from 'node:test';
import type { Kysely } from 'kysely';
import { runTransaction, type DatabaseHandle } from '../src/db/index.js';
import { createTasks } from '../src/tasks/index.js';
import { cliEnv, ROOT } from './support/cli.js';
import { createTestDatabase, DIALECTS, latchkeyEnv, postgresSkipReason } from './support/databases.js';
import { createRunLog, RECORD_TYPE, recordParams, type TaskRunLogTable } from './support/tasks-record.js';

const skip = DIALECTS.includes('postgres') ? await postgresSkipReason() : 'PostgreSQL is not among LATCHKEY_TEST_DIALECTS';
const CHILD = fileURLToPath(new URL('./support/tasks-child.ts', import.meta.url));

/** Waits for `check` to hold, polling; fails after a generous ceiling (never a timing assertion). */
async function until<T>(what: string, check: () => Promise<T | undefined | false>, ceilingMs = 120_000): Promise<T> {
  const deadline = Date.now() + ceilingMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface TaskProcess {
  pid: number;
  child: ChildProcess;
  output(): string;
  exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** Ends stdin (a graceful close) and resolves with the exit code. */
  stop(): Promise<number | null>;
}

interface RunnerConfig {
  leaseMs: number;
  heartbeatMs: number;
  concurrency: number;
  pollIntervalMs: number;
}

async function startTaskProcess(t: TestContext, env: Record<string, string>, config: RunnerConfig): Promise<TaskProcess> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), CHILD], {
    cwd: ROOT,
    env: cliEnv({ ...env, TASKS_CHILD: JSON.stringify(config) }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      await exited;
    }
  });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => (line === 'ready' ? resolve() : (output += `${line}\n`)));
    void exited.then(([code]) => reject(new Error(`a task process exited with ${code}:\n${output}`)));
  });
  return {
    pid: child.pid as number,
    child,
    output: () => output,
    exited,
    async stop() {
      child.stdin.end();
      const [code] = await exited;
      return code;
    },
  };
}

/** A migrated test database with the run log, and a scheduler (this process runs no task). */
async function setUp(t: TestContext) {
  const tdb = await createTestDatabase('postgres');
  t.after(() => tdb.dispose());
  const handle: DatabaseHandle = await tdb.openMigrated();
  await createRunLog(handle.db as unknown as Kysely<unknown>);
  const db = handle.db.withTables<{ task_run_log: TaskRunLogTable }>();
  const scheduler = createTasks({ handle });
  scheduler.register({
    type: RECORD_TYPE,
    paramsSchema: recordParams,
    run: () => {
      throw new Error('the test process never runs tasks');
    },
  });
  /** Schedules `count` due tasks in one transaction, so both processes are woken by one NOTIFY at its commit. */
  const scheduleDue = async (count: number, sleepMs: number): Promise<string[]> =>
    runTransaction(handle, async (trx) => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) ids.push((await scheduler.schedule({ type: RECORD_TYPE, params: { sleepMs } }, { tx: trx })).id);
      return ids;
    });
  // Only the test's own type: each process also runs Latchkey's own recurring tasks.
  const succeeded = async () =>
    Number((await db.selectFrom('tasks').select((eb) => eb.fn.countAll().as('n')).where('type', '=', RECORD_TYPE).where('status', '=', 'succeeded').executeTakeFirstOrThrow()).n);
  // One settings environment for both processes: the same master key.
  const env = latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'warn' });
  return { db, env, scheduleDue, succeeded };
}

describe('task engine across processes [postgres]', skip ? { skip } : {}, () => {
  it('two processes run 1,000 due tasks: every task once, no slot twice, both take part', async (t) => {
    const { db, env, scheduleDue, succeeded } = await setUp(t);
    const config = { leaseMs: 30_000, heartbeatMs: 10_000, concurrency: 10, pollIntervalMs: 1000 };
    const [a, b] = await Promise.all([startTaskProcess(t, env, config), startTaskProcess(t, env, config)]);
    const ids = await scheduleDue(1000, 0);
    await until('every task to succeed', async () => (await succeeded()) === ids.length);

    const log = await db.selectFrom('task_run_log').selectAll().execute();
    assert.deepEqual(new Set(log.map((r) => r.task_id)), new Set(ids), 'every task ran');
    const twice = await db
      .selectFrom('task_run_log')
      .select(['task_id', 'slot', (eb) => eb.fn.countAll().as('runs')])
      .groupBy(['task_id', 'slot'])
      .having((eb) => eb.fn.countAll(), '>', 1)
      .execute();
    assert.deepEqual(twice, [], 'no slot ran twice');
    assert.equal(log.length, ids.length);
    assert.ok(log.every((r) => Number(r.finished) === 1 && Number(r.attempt) === 1));
    const byPid = new Map<number, number>();
    for (const r of log) byPid.set(Number(r.pid), (byPid.get(Number(r.pid)) ?? 0) + 1);
    assert.deepEqual([...byPid.keys()].sort(), [a.pid, b.pid].sort(), `both processes ran tasks (${JSON.stringify([...byPid])})`);

    const outcomes = await db
      .selectFrom('task_runs')
      .select(['outcome', (eb) => eb.fn.countAll().as('n')])
      .where('task_id', 'in', (eb) => eb.selectFrom('tasks').select('id').where('type', '=', RECORD_TYPE))
      .groupBy('outcome')
      .execute();
    assert.deepEqual(outcomes.map((o) => [o.outcome, Number(o.n)]), [['succeeded', ids.length]], 'one succeeded run per task, nothing else');
    assert.equal(await a.stop(), 0, a.output());
    assert.equal(await b.stop(), 0, b.output());
  });

  it('kill -9 of a process mid-run: after its 2 s lease the other process runs its tasks again; nothing is lost; its attempts are recorded as lease_expired', async (t) => {
    const { db, env, scheduleDue, succeeded } = await setUp(t);
    const config = { leaseMs: 2000, heartbeatMs: 500, concurrency: 5, pollIntervalMs: 200 };
    const [victim, survivor] = await Promise.all([startTaskProcess(t, env, config), startTaskProcess(t, env, config)]);
    const ids = await scheduleDue(20, 3000);
    const unfinishedOfVictim = () => db.selectFrom('task_run_log').selectAll().where('pid', '=', victim.pid).where('finished', '=', 0).execute();
    await until('the victim to run tasks', async () => (await unfinishedOfVictim()).length > 0);
    victim.child.kill('SIGKILL');
    assert.deepEqual((await victim.exited)[1], 'SIGKILL');
    // What the victim was running when it died: started, never finished.
    const killed = await unfinishedOfVictim();
    assert.ok(killed.length > 0);

    await until('every task to succeed', async () => (await succeeded()) === ids.length);
    const tasks = await db.selectFrom('tasks').select(['id', 'status', 'lease_owner']).where('type', '=', RECORD_TYPE).execute();
    assert.deepEqual(new Set(tasks.map((r) => r.id)), new Set(ids));
    assert.ok(tasks.every((r) => r.status === 'succeeded' && r.lease_owner === null));
    const runs = await db.selectFrom('task_runs').select(['task_id', 'run_slot', 'attempt', 'outcome']).execute();
    for (const id of ids) {
      assert.equal(runs.filter((r) => r.task_id === id && r.outcome === 'succeeded').length, 1, `task ${id}'s completion is recorded once`);
    }
    const log = await db.selectFrom('task_run_log').selectAll().execute();
    for (const lost of killed) {
      assert.ok(
        runs.some((r) => r.task_id === lost.task_id && r.run_slot === lost.slot && Number(r.attempt) === Number(lost.attempt) && r.outcome === 'lease_expired'),
        `the killed attempt ${lost.attempt} of ${lost.task_id} is recorded as lease_expired`,
      );
      const again = log.filter((r) => r.task_id === lost.task_id && r.slot === lost.slot && Number(r.attempt) > Number(lost.attempt));
      assert.ok(
        again.some((r) => Number(r.pid) === survivor.pid && Number(r.finished) === 1),
        `task ${lost.task_id} ran again to its end in the surviving process`,
      );
    }
    for (const id of ids) assert.ok(log.some((r) => r.task_id === id && Number(r.finished) === 1), `task ${id} ran to its end`);
    assert.equal(await survivor.stop(), 0, survivor.output());
  });
});
