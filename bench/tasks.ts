// `npm run bench:tasks [-- --quick]`: no-op tasks claimed, run and completed per second by Latchkey's
// task engine with 1 and 2 worker processes on PostgreSQL and 1 on SQLite, next to graphile-worker
// (its own schema in the same PostgreSQL database, same run, same concurrency) as the peer. Each
// round queues N due tasks one per call (unbatched: `tasks.schedule` / `addJob`), starts the worker
// processes (bench/tasks-worker.ts) on a "go" and times until no task is left; CPU per task is the
// workers' (from /proc) and, apart, every `postgres` process's on this machine. Rounds alternate the
// order of the targets. Then, on a fresh SQLite and PostgreSQL database each, one run of the
// credential invalidator over 100,000 queued task API keys (5,000 with --quick) next to one plain
// bulk UPDATE of as many rows; see invalidationRound. Full mode writes its section of
// BENCHMARKS.md; --quick writes nothing. `--only invalidation` runs only the invalidation, prints
// its table and writes nothing either (the section's other figures would be missing).
// BENCH_CPU_PROF=<dir> makes every worker write a V8 CPU profile there.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeWorkerUtils, Logger } from 'graphile-worker';
import { sql } from 'kysely';
import { z } from 'zod';
import { generateApiKey, lastFour } from '../src/apikeys/index.js';
import { loadSettings, newId } from '../src/core/index.js';
import type { DatabaseHandle, DialectName } from '../src/db/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey } from '../src/latchkey.js';
import { createTasks, CredentialInvalidator, createCredentialStrategy, type Tasks } from '../src/tasks/index.js';
import { cliEnv, ROOT } from '../test/support/cli.js';
import { createTestDatabase, latchkeyEnv, POSTGRES_URL } from '../test/support/databases.js';
import { profileArgs } from './apikeys-servers.js';
import { processCpuSeconds } from './http-load.js';
import { describeMachine, formatCount, formatPercent, machineLine, markdownTable, parseMode, publish, textTable, type BenchMode } from './support.js';

const HEADING = '## Tasks (`npm run bench:tasks`)';
const TSX = import.meta.resolve('tsx');
const NOOP_TYPE = 'bench.noop';
const GRAPHILE_NOOP = 'noop';

interface Settings {
  /** Due tasks per round. */
  tasks: number;
  /** Rounds per target, in alternating order. */
  runs: number;
  /** Tasks run at once per worker process (Latchkey's default; graphile-worker's `concurrency`). */
  concurrency: number;
  /** Task API keys queued, then invalidated in one `runOnce`, per database. */
  invalidationKeys: number;
}
const FULL: Settings = { tasks: 5000, runs: 2, concurrency: 10, invalidationKeys: 100_000 };
const QUICK: Settings = { tasks: 500, runs: 1, concurrency: 10, invalidationKeys: 5000 };

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

type TargetId = 'latchkey-pg-1' | 'latchkey-pg-2' | 'latchkey-sqlite-1' | 'graphile-pg-1';

const NAMES: Record<TargetId, string> = {
  'latchkey-pg-1': 'Latchkey, PostgreSQL, 1 process',
  'latchkey-pg-2': 'Latchkey, PostgreSQL, 2 processes',
  'graphile-pg-1': 'graphile-worker 0.18, PostgreSQL, 1 process',
  'latchkey-sqlite-1': 'Latchkey, SQLite, 1 process',
};

interface WorkerSpec {
  engine: 'latchkey' | 'graphile';
  task: string;
  url: string | undefined;
  dataDir: string;
  schema?: string;
}

/** One round's fresh database (or graphile-worker schema): no dead rows from the last round. */
interface Prepared {
  /** Queues one due no-op task. */
  add(): Promise<void>;
  /** Tasks not yet completed. */
  remaining(): Promise<number>;
  worker: WorkerSpec;
  dispose(): Promise<void>;
}

interface Target {
  id: TargetId;
  processes: number;
  prepare(): Promise<Prepared>;
}

interface Round {
  /** Queued per second, one task per call. */
  addPerSec: number;
  /** Claimed, run and completed per second, from "go" until none is left (the workers' start included). */
  perSec: number;
  workerCpuUsPerTask: number | undefined;
  postgresCpuUsPerTask: number | undefined;
}

/** CPU seconds of every `postgres` process on this machine (the local server; other users of it count too). */
function postgresCpuSeconds(): number | undefined {
  let total = 0;
  let found = false;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    if (!stat.includes(' (postgres) ')) continue;
    const seconds = processCpuSeconds(Number(entry));
    if (seconds === undefined) continue;
    total += seconds;
    found = true;
  }
  return found ? total : undefined;
}

interface Worker {
  child: ChildProcess;
  go(): void;
  stop(): Promise<void>;
}

async function startWorker(spec: WorkerSpec, concurrency: number): Promise<Worker> {
  const child = spawn(process.execPath, [...profileArgs(), '--import', TSX, `${ROOT}bench/tasks-worker.ts`], {
    cwd: ROOT,
    env: cliEnv({ BENCH_TASKS_WORKER: JSON.stringify({ ...spec, concurrency }) }),
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit') as Promise<[number | null]>;
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line === 'ready') resolve();
    });
    void exited.then(([code]) => reject(new Error(`a ${spec.engine} worker exited with ${code} before it was ready`)));
  });
  return {
    child,
    go: () => child.stdin?.write('go\n'),
    async stop() {
      child.stdin?.end();
      const [code] = await exited;
      if (code !== 0) throw new Error(`a ${spec.engine} worker exited with ${code}`);
    },
  };
}

async function round(target: Target, settings: Settings): Promise<Round> {
  const prepared = await target.prepare();
  try {
    const addStart = performance.now();
    for (let i = 0; i < settings.tasks; i++) await prepared.add();
    const addPerSec = settings.tasks / ((performance.now() - addStart) / 1000);
    const workers = await Promise.all(Array.from({ length: target.processes }, () => startWorker(prepared.worker, settings.concurrency)));
    try {
      const cpu = () => workers.reduce<number | undefined>((sum, w) => {
        const seconds = processCpuSeconds(w.child.pid);
        return sum === undefined || seconds === undefined ? undefined : sum + seconds;
      }, 0);
      const cpuBefore = cpu();
      const pgBefore = prepared.worker.url === undefined ? undefined : postgresCpuSeconds();
      const start = performance.now();
      for (const w of workers) w.go();
      const deadline = Date.now() + 10 * 60_000;
      while ((await prepared.remaining()) > 0) {
        if (Date.now() > deadline) throw new Error(`${NAMES[target.id]}: tasks were still queued after 10 minutes`);
        await sleep(20);
      }
      const seconds = (performance.now() - start) / 1000;
      const cpuAfter = cpu();
      const pgAfter = pgBefore === undefined ? undefined : postgresCpuSeconds();
      const perTask = (before: number | undefined, after: number | undefined) => (before === undefined || after === undefined ? undefined : ((after - before) * 1e6) / settings.tasks);
      return { addPerSec, perSec: settings.tasks / seconds, workerCpuUsPerTask: perTask(cpuBefore, cpuAfter), postgresCpuUsPerTask: perTask(pgBefore, pgAfter) };
    } finally {
      for (const w of workers) await w.stop();
    }
  } finally {
    await prepared.dispose();
  }
}

/** A scheduler in this process (it runs no task) for the no-op type. */
function scheduler(handle: DatabaseHandle): Tasks {
  const tasks = createTasks({ handle });
  tasks.register({
    type: NOOP_TYPE,
    paramsSchema: z.object({}),
    run: () => {
      throw new Error('the benchmark process runs no task');
    },
  });
  return tasks;
}

function latchkeyTarget(id: TargetId, dialect: DialectName, processes: number): Target {
  return {
    id,
    processes,
    async prepare() {
      const tdb = await createTestDatabase(dialect);
      const handle = await tdb.openMigrated();
      const tasks = scheduler(handle);
      return {
        add: async () => {
          await tasks.schedule({ type: NOOP_TYPE });
        },
        async remaining() {
          const row = await handle.db.selectFrom('tasks').select((eb) => eb.fn.countAll().as('n')).where('status', '!=', 'succeeded').executeTakeFirstOrThrow();
          return Number(row.n);
        },
        worker: { engine: 'latchkey', task: NOOP_TYPE, url: tdb.url, dataDir: tdb.dataDir },
        dispose: () => tdb.dispose(),
      };
    },
  };
}

const quiet = new Logger(() => (level, message) => {
  if (level === 'warning' || level === 'error') log(`graphile-worker ${level}: ${message}`);
});

function graphileTarget(): Target {
  return {
    id: 'graphile-pg-1',
    processes: 1,
    async prepare() {
      // A test database only for its handle (counting the jobs left, dropping the schema).
      const tdb = await createTestDatabase('postgres');
      const handle = tdb.open();
      const schema = `gw_bench_${randomBytes(6).toString('hex')}`;
      const utils = await makeWorkerUtils({ connectionString: POSTGRES_URL, schema, logger: quiet });
      await utils.migrate();
      const jobs = handle.db.withSchema(schema).withTables<{ _private_jobs: { id: string } }>();
      return {
        add: async () => {
          await utils.addJob(GRAPHILE_NOOP, {});
        },
        async remaining() {
          const row = await jobs.selectFrom('_private_jobs').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
          return Number(row.n);
        },
        worker: { engine: 'graphile', task: GRAPHILE_NOOP, url: POSTGRES_URL, dataDir: tdb.dataDir, schema },
        async dispose() {
          await utils.release();
          await handle.db.schema.dropSchema(schema).ifExists().cascade().execute();
          await tdb.dispose();
        },
      };
    },
  };
}

interface Result {
  rounds: Record<TargetId, Round[]>;
  invalidation: InvalidationRound[];
  versions: { postgres: string; sqlite: string };
}

async function versions(): Promise<Result['versions']> {
  const pg = await createTestDatabase('postgres');
  const lite = await createTestDatabase('sqlite');
  try {
    const pgVersion = await sql<{ server_version: string }>`show server_version`.execute(pg.open().db);
    const liteVersion = await sql<{ v: string }>`select sqlite_version() as v`.execute(lite.open().db);
    return { postgres: pgVersion.rows[0]?.server_version ?? 'unknown', sqlite: liteVersion.rows[0]?.v ?? 'unknown' };
  } finally {
    await pg.dispose();
    await lite.dispose();
  }
}

async function run(settings: Settings): Promise<Result> {
  const targets: Target[] = [
    latchkeyTarget('latchkey-pg-1', 'postgres', 1),
    latchkeyTarget('latchkey-pg-2', 'postgres', 2),
    graphileTarget(),
    latchkeyTarget('latchkey-sqlite-1', 'sqlite', 1),
  ];
  const rounds = Object.fromEntries(targets.map((t) => [t.id, [] as Round[]])) as Result['rounds'];
  for (let r = 0; r < settings.runs; r++) {
    for (const target of r % 2 === 0 ? targets : [...targets].reverse()) {
      log(`tasks: round ${r + 1}/${settings.runs}, ${NAMES[target.id]}: ${formatCount(settings.tasks)} tasks`);
      const result = await round(target, settings);
      log(`  ${formatCount(result.perSec)} tasks/s (queued at ${formatCount(result.addPerSec)}/s)`);
      rounds[target.id].push(result);
    }
  }
  return { rounds, invalidation: await invalidationRounds(settings), versions: await versions() };
}

async function invalidationRounds(settings: Settings): Promise<InvalidationRound[]> {
  const invalidation: InvalidationRound[] = [];
  for (const dialect of ['sqlite', 'postgres'] as const) {
    log(`tasks: invalidating ${formatCount(settings.invalidationKeys)} queued task API keys on ${dialect}`);
    const result = await invalidationRound(dialect, settings.invalidationKeys);
    log(`  ${result.seconds.toFixed(2)} s, ${formatCount(result.keysPerSec)} keys/s; one plain UPDATE of as many rows ${result.floorSeconds.toFixed(2)} s`);
    invalidation.push(result);
  }
  return invalidation;
}

// Invalidation of queued task API keys: per dialect, a fresh database and an assembled Latchkey
// (no HTTP, no background work). A sample of tasks scheduled with `runAs: 'caller'` and removed
// goes through the real path (grant, queue in the removing transaction); the bulk is inserted
// directly: `api_keys` rows of kind 'task' (real ids, secrets and keyed hashes) and their
// `credentials_to_invalidate` rows, queued two hours ago. Then one `CredentialInvalidator.runOnce()`
// over the strategy Latchkey assembles (delay 0, default batch of 500) is timed, and checked:
// every key revoked and refused by the verifier, one audit event and one bus row per key, the queue
// empty. The floor: one plain `UPDATE api_keys SET revoked_at` of as many rows of another tenant.

const INVALIDATION_TASK_TYPE = 'bench.as_user';
/** Tasks scheduled and removed through the API (their keys are part of the total). */
const SAMPLE_TASKS = 50;
/** Keys whose secrets are kept to check that the verifier accepts them before and refuses them after. */
const VERIFIED = 20;
const INSERT_CHUNK = 1000;

interface InvalidationRound {
  dialect: DialectName;
  keys: number;
  seconds: number;
  keysPerSec: number;
  /** This process's CPU (Latchkey runs in it) during runOnce, per key. */
  processCpuUsPerKey: number;
  postgresCpuUsPerKey: number | undefined;
  /** One plain bulk UPDATE of as many rows. */
  floorSeconds: number;
  batches: number;
  /** Time to queue the bulk (not part of the figure). */
  setupSeconds: number;
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`bench:tasks invalidation: ${message}`);
}

async function invalidationRound(dialect: DialectName, keys: number): Promise<InvalidationRound> {
  const tdb = await createTestDatabase(dialect);
  const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'silent' }) });
  const latchkey = await createLatchkey({ settings, http: false, bootstrap: false, background: false });
  try {
    const setupStart = performance.now();
    const { identity, database, apiKeys } = latchkey;
    const db = database.db;
    latchkey.tasks.register({ type: INVALIDATION_TASK_TYPE, paramsSchema: z.object({}), run: () => {
      throw new Error('the benchmark runs no task');
    } });
    const tenant = await identity.tenants.create({ name: `bench-${randomBytes(4).toString('hex')}` });
    const user = await identity.users.create(SYSTEM_ACTOR, tenant.id, { username: 'worker', roles: ['editor'] });
    const floorTenant = await identity.tenants.create({ name: `bench-floor-${randomBytes(4).toString('hex')}` });
    const floorUser = await identity.users.create(SYSTEM_ACTOR, floorTenant.id, { username: 'worker', roles: ['editor'] });
    const actor = { type: 'user' as const, tenantId: tenant.id, userId: user.id };

    // The real path for a sample: granted with the task, queued in the transaction that removes it.
    const sample: string[] = [];
    for (let i = 0; i < SAMPLE_TASKS; i++) {
      const task = await latchkey.tasks.schedule({ type: INVALIDATION_TASK_TYPE, runAs: 'caller', actor, schedule: { every: '1h' }, enabled: false });
      check(task.credentials.length === 1 && task.credentials[0]?.kind === 'native', 'a task scheduled with runAs holds exactly its native key');
      sample.push(task.id);
    }
    const removed = await latchkey.tasks.removeMany(sample);
    check(removed.removed.length === SAMPLE_TASKS, 'every sample task was removed');
    const template = await db.selectFrom('api_keys').selectAll().where('tenant_id', '=', tenant.id).executeTakeFirstOrThrow();
    check(template.kind === 'task' && template.task_id !== null, 'a granted key is an api_keys row of kind "task" naming its task');
    const queuedSample = await db.selectFrom('credentials_to_invalidate').select((eb) => eb.fn.countAll().as('n')).where('tenant_id', '=', tenant.id).executeTakeFirstOrThrow();
    check(Number(queuedSample.n) === SAMPLE_TASKS, `removing ${SAMPLE_TASKS} tasks queued ${String(queuedSample.n)} keys`);

    // The bulk: real key ids, secrets and hashes, shaped like the granted row; removed long ago.
    const bulk = keys - SAMPLE_TASKS;
    const queuedAt = new Date(Date.now() - 2 * 3600_000).toISOString();
    const verified: string[] = [];
    const insertKeys = async (tenantId: string, ownerId: string, count: number, queue: boolean) => {
      for (let start = 0; start < count; start += INSERT_CHUNK) {
        const n = Math.min(INSERT_CHUNK, count - start);
        const rows = await Promise.all(
          Array.from({ length: n }, async () => {
            const { id, secret, key } = generateApiKey();
            if (queue && verified.length < VERIFIED) verified.push(key);
            const taskId = newId('tsk');
            return { id, taskId, row: { ...template, id, tenant_id: tenantId, owner_id: ownerId, name: `task ${INVALIDATION_TASK_TYPE} ${taskId}`, hash: await apiKeys.hasher.hash(tenantId, secret), last4: lastFour(key), task_id: taskId } };
          }),
        );
        await db.insertInto('api_keys').values(rows.map((r) => r.row)).execute();
        if (!queue) continue;
        await db
          .insertInto('credentials_to_invalidate')
          .values(rows.map((r) => ({ id: newId('inv'), tenant_id: tenantId, kind: 'native', credential_id: r.id, task_id: r.taskId, reason: 'task_removed', queued_at: queuedAt, next_attempt_at: queuedAt, last_error: null, attempts: 0 })))
          .execute();
      }
    };
    await insertKeys(tenant.id, user.id, bulk, true);
    await insertKeys(floorTenant.id, floorUser.id, keys, false);
    for (const key of verified) check((await apiKeys.verifier.verify(key)).valid, 'a queued key is valid before its invalidation');
    const liveBefore = await db.selectFrom('api_keys').select((eb) => eb.fn.countAll().as('n')).where('tenant_id', '=', tenant.id).where('kind', '=', 'task').where('revoked_at', 'is', null).executeTakeFirstOrThrow();
    check(Number(liveBefore.n) === keys, `${formatCount(keys)} live task keys before, found ${String(liveBefore.n)}`);
    const auditBefore = await db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).where('action', '=', 'api_key.revoked').executeTakeFirstOrThrow();
    const busBefore = await db.selectFrom('invalidations').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    const setupSeconds = (performance.now() - setupStart) / 1000;

    // The floor: one plain statement revoking as many rows.
    const floorStart = performance.now();
    const now = new Date().toISOString();
    const floor = await db.updateTable('api_keys').set({ revoked_at: now, updated_at: now }).where('tenant_id', '=', floorTenant.id).where('revoked_at', 'is', null).executeTakeFirst();
    const floorSeconds = (performance.now() - floorStart) / 1000;
    check(Number(floor.numUpdatedRows) === keys, 'the floor update revoked every row');

    // The invalidation itself, over the strategy Latchkey assembles.
    const strategy = createCredentialStrategy({ handle: database, apiKeys: apiKeys.service, credentialType: settings.taskCredentialType });
    const invalidator = new CredentialInvalidator({ handle: database, strategy, delayMs: 0 });
    const cpuBefore = process.cpuUsage();
    const pgBefore = dialect === 'postgres' ? postgresCpuSeconds() : undefined;
    const start = performance.now();
    const report = await invalidator.runOnce();
    const seconds = (performance.now() - start) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const pgAfter = dialect === 'postgres' ? postgresCpuSeconds() : undefined;

    check(report.invalidated === keys && report.failed === 0 && report.stillReferenced === 0, `runOnce reported ${JSON.stringify(report)} for ${keys} queued keys`);
    const live = await db.selectFrom('api_keys').select((eb) => eb.fn.countAll().as('n')).where('tenant_id', '=', tenant.id).where('revoked_at', 'is', null).executeTakeFirstOrThrow();
    check(Number(live.n) === 0, `${String(live.n)} task keys are still live after runOnce`);
    const left = await db.selectFrom('credentials_to_invalidate').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    check(Number(left.n) === 0, `${String(left.n)} entries are still queued after runOnce`);
    const auditAfter = await db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).where('action', '=', 'api_key.revoked').executeTakeFirstOrThrow();
    check(Number(auditAfter.n) - Number(auditBefore.n) === keys, `${Number(auditAfter.n) - Number(auditBefore.n)} api_key.revoked audit events for ${keys} keys`);
    const busAfter = await db.selectFrom('invalidations').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    check(Number(busAfter.n) - Number(busBefore.n) === keys, `${Number(busAfter.n) - Number(busBefore.n)} bus invalidations for ${keys} keys`);
    for (const key of verified) check(!(await apiKeys.verifier.verify(key)).valid, 'an invalidated key is refused by the verifier');
    return {
      dialect,
      keys,
      seconds,
      keysPerSec: keys / seconds,
      processCpuUsPerKey: (cpu.user + cpu.system) / keys,
      postgresCpuUsPerKey: pgBefore === undefined || pgAfter === undefined ? undefined : ((pgAfter - pgBefore) * 1e6) / keys,
      floorSeconds,
      batches: Math.ceil(keys / 500),
      setupSeconds,
    };
  } finally {
    await latchkey.close();
    await tdb.dispose();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
};
const us = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(0)} µs`);

interface Summary {
  perSec: number;
  addPerSec: number;
  workerCpuUsPerTask: number | undefined;
  postgresCpuUsPerTask: number | undefined;
  runs: number[];
}

function summarise(rounds: Round[]): Summary {
  const defined = (xs: Array<number | undefined>) => (xs.every((x) => x !== undefined) ? median(xs as number[]) : undefined);
  return {
    perSec: median(rounds.map((r) => r.perSec)),
    addPerSec: median(rounds.map((r) => r.addPerSec)),
    workerCpuUsPerTask: defined(rounds.map((r) => r.workerCpuUsPerTask)),
    postgresCpuUsPerTask: defined(rounds.map((r) => r.postgresCpuUsPerTask)),
    runs: rounds.map((r) => r.perSec),
  };
}

function tables(r: Result) {
  const s = Object.fromEntries((Object.keys(r.rounds) as TargetId[]).map((id) => [id, summarise(r.rounds[id])])) as Record<TargetId, Summary>;
  const peer = s['graphile-pg-1'].perSec;
  const header = ['target', 'tasks/s', 'of graphile-worker', 'runs', 'worker CPU / task', 'postgres CPU / task', 'queued / s (one per call)'];
  const rows = (Object.keys(NAMES) as TargetId[]).map((id) => [
    NAMES[id],
    formatCount(s[id].perSec),
    formatPercent(s[id].perSec / peer),
    s[id].runs.map(formatCount).join(' / '),
    us(s[id].workerCpuUsPerTask),
    us(s[id].postgresCpuUsPerTask),
    formatCount(s[id].addPerSec),
  ]);
  return { s, header, rows };
}

const DIALECT_NAMES: Record<DialectName, string> = { sqlite: 'SQLite', postgres: 'PostgreSQL' };

function invalidationTable(r: Pick<Result, 'invalidation'>) {
  const header = ['database', 'keys', 'runOnce', 'keys/s', 'floor: one UPDATE', 'runOnce / floor', 'process CPU / key', 'postgres CPU / key', 'queueing (not timed)'];
  const rows = r.invalidation.map((x) => [
    DIALECT_NAMES[x.dialect],
    formatCount(x.keys),
    `${x.seconds.toFixed(2)} s`,
    formatCount(x.keysPerSec),
    `${x.floorSeconds.toFixed(2)} s`,
    `${(x.seconds / x.floorSeconds).toFixed(0)}×`,
    us(x.processCpuUsPerKey),
    us(x.postgresCpuUsPerKey),
    `${x.setupSeconds.toFixed(1)} s`,
  ]);
  return { header, rows };
}

function verdicts(r: Result): Array<{ target: string; measured: string; met: boolean }> {
  const { s } = tables(r);
  const ratio = s['latchkey-pg-1'].perSec / s['graphile-pg-1'].perSec;
  return [{ target: "Latchkey (PostgreSQL, 1 process) ≥ 50% of graphile-worker's unbatched rate, same concurrency", measured: formatPercent(ratio), met: ratio >= 0.5 }];
}

function notes(r: Result): string[] {
  const { s } = tables(r);
  return [
    `On PostgreSQL each task is one claim statement (an UPDATE of a \`FOR UPDATE SKIP LOCKED\` CTE, shared by the tasks claimed together) and one finish statement (the fenced update and the history row in one data-modifying CTE), both named prepared statements, with one claim at a time per process (it claims what room has freed meanwhile); on SQLite the claim is one statement and the finish one \`BEGIN IMMEDIATE\` transaction. graphile-worker's is one \`get_job\` and one \`complete_job\` call (prepared statements), up to \`concurrency\` of them in flight.`,
    `Two processes against one: ${formatPercent(s['latchkey-pg-2'].perSec / s['latchkey-pg-1'].perSec)} of the one-process rate on the same ${describeMachine().cores} cores, which also run PostgreSQL and this process.`,
    `"postgres CPU" is every \`postgres\` process on the machine during the round, so other users of the server count in it; "worker CPU" is the worker processes' own, from /proc.`,
  ];
}

function report(r: Result, machine: string, settings: Settings, date: string): string {
  const t = tables(r);
  const inv = invalidationTable(r);
  return [
    `Command: \`npm run bench:tasks\`. Date: ${date}. Machine: ${machine}; 1-minute load average at the end ${(loadavg()[0] ?? 0).toFixed(2)}.`,
    '',
    `Per round: ${formatCount(settings.tasks)} due no-op tasks queued one per call (Latchkey \`tasks.schedule\`, graphile-worker \`addJob\`: unbatched), then the worker processes (bench/tasks-worker.ts, concurrency ${settings.concurrency} each, graphile-worker's defaults otherwise: no local queue, no batched completion) started on one signal and timed until no task is left, their start included. ${settings.runs} rounds per target in alternating order; medians. graphile-worker runs in its own schema of the same PostgreSQL database, in the same run.`,
    '',
    '### Targets',
    '',
    markdownTable(['target', 'measured', 'met'], verdicts(r).map((x) => [x.target, x.measured, x.met ? 'met' : 'missed'])),
    '',
    '### No-op tasks claimed, run and completed',
    '',
    markdownTable(t.header, t.rows),
    '',
    `### Invalidation of ${formatCount(settings.invalidationKeys)} queued keys`,
    '',
    `Per database, a fresh one: ${formatCount(settings.invalidationKeys)} task API keys queued for invalidation, ${SAMPLE_TASKS} of them by scheduling tasks with \`runAs: 'caller'\` and removing them (\`tasks.removeMany\`), the rest inserted in bulk (\`api_keys\` rows of kind \`task\` with real ids and keyed hashes, and their \`credentials_to_invalidate\` rows, queued two hours earlier). Timed: one \`CredentialInvalidator.runOnce()\` (delay 0, batches of 500) over the strategy Latchkey assembles; checked after it: every key revoked and refused by the verifier, one \`api_key.revoked\` audit event and one bus invalidation per key, the queue empty (the benchmark fails otherwise). Floor, same run: one plain \`UPDATE api_keys SET revoked_at\` of as many rows of another tenant. "Process CPU" is this process's (Latchkey runs in it); "postgres CPU" every \`postgres\` process on the machine.`,
    '',
    markdownTable(inv.header, inv.rows),
    '',
    '### Notes',
    '',
    ...notes(r).map((n) => `- ${n}`),
  ].join('\n');
}

async function main(mode: BenchMode, only: 'invalidation' | undefined): Promise<void> {
  const settings = mode.quick ? QUICK : FULL;
  log(`bench:tasks — mode: ${mode.label}${only ? ', invalidation only' : ''}`);
  const machine = describeMachine();
  if (only === 'invalidation') {
    const inv = invalidationTable({ invalidation: await invalidationRounds(settings) });
    process.stdout.write(`\n${textTable(inv.header, inv.rows)}\n\n1-minute load average at the end ${(loadavg()[0] ?? 0).toFixed(2)} (at the start ${machine.loadAtStart.toFixed(2)}).\n`);
    log('--only invalidation: BENCHMARKS.md left unchanged.');
    return;
  }
  const result = await run(settings);
  const t = tables(result);
  const inv = invalidationTable(result);
  publish(mode, HEADING, {
    text: [textTable(t.header, t.rows), textTable(inv.header, inv.rows)],
    verdicts: verdicts(result),
    notes: notes(result),
    section: () => report(result, machineLine(machine, { PostgreSQL: result.versions.postgres, SQLite: result.versions.sqlite }), settings, new Date().toISOString().slice(0, 10)),
  });
}

/** `--only invalidation` apart, the arguments every benchmark takes (see parseMode). */
function parseArgs(argv: readonly string[]): { mode: BenchMode; only: 'invalidation' | undefined } {
  const at = argv.indexOf('--only');
  if (at === -1) return { mode: parseMode(argv), only: undefined };
  if (argv[at + 1] !== 'invalidation') throw new TypeError('"--only" takes "invalidation", the one part that runs alone.');
  return { mode: parseMode(argv.filter((_, i) => i !== at && i !== at + 1)), only: 'invalidation' };
}

const args = parseArgs(process.argv.slice(2));
await main(args.mode, args.only);
