import { it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { manualClock, newId } from '../core/index.js';
import type { Database, DatabaseHandle } from '../db/index.js';
import { createTestDatabase, eachDialect, type TestDatabase } from '../../test/support/databases.js';
import { createUsageGate, type UsageDecision, type UsageGate, type UsagePolicy } from './usage.js';

/** Window-aligned for every window length used here, so a test never crosses a boundary by accident. */
const START = new Date(Date.UTC(2030, 0, 1));
/** Flushes happen only when a test calls flush(): the timer never fires during a test. */
const NO_TIMER = 3_600_000;

interface Fixture {
  tdb: TestDatabase;
  handle: DatabaseHandle;
  tenantId: string;
  userId: string;
}

async function setUp(tdb: TestDatabase): Promise<Fixture> {
  const handle = await tdb.openMigrated();
  const tenantId = newId('ten');
  const userId = newId('usr');
  const at = START.toISOString();
  await handle.db.insertInto('tenants').values({ id: tenantId, name: `t-${tenantId}`, created_at: at, updated_at: at }).execute();
  await handle.db
    .insertInto('users')
    .values({ id: userId, tenant_id: tenantId, username: 'owner', display_name: null, password_hash: null, created_at: at, updated_at: at })
    .execute();
  return { tdb, handle, tenantId, userId };
}

interface KeyLimits {
  rateLimit?: { limit: number; windowMs: number };
  credits?: number;
  refill?: { amount: number; intervalMs: number };
}

async function insertKey(f: Fixture, limits: KeyLimits): Promise<AdmitKey> {
  const id = newId('key');
  const at = START.toISOString();
  await f.handle.db
    .insertInto('api_keys')
    .values({
      id,
      tenant_id: f.tenantId,
      owner_id: f.userId,
      name: 'test',
      roles: null,
      hash: 'h',
      previous_hash: null,
      previous_expires_at: null,
      last4: 'abcd',
      expires_at: null,
      revoked_at: null,
      last_used_at: null,
      rate_limit: limits.rateLimit ? JSON.stringify(limits.rateLimit) : null,
      credits_remaining: limits.credits ?? null,
      credits_refill: limits.refill ? JSON.stringify(limits.refill) : null,
      credits_refilled_at: limits.refill ? at : null,
      meta: null,
      created_at: at,
      updated_at: at,
    })
    .execute();
  const policy: UsagePolicy = {
    rateLimit: limits.rateLimit ?? null,
    credits: limits.credits === undefined ? null : { remaining: limits.credits, refill: limits.refill ?? null },
  };
  return { id, tenantId: f.tenantId, policy };
}

async function creditsOf(db: Kysely<Database>, id: string): Promise<number | null> {
  const row = await db.selectFrom('api_keys').select('credits_remaining').where('id', '=', id).executeTakeFirstOrThrow();
  return row.credits_remaining === null ? null : Number(row.credits_remaining);
}

async function windowUsed(db: Kysely<Database>, id: string): Promise<number> {
  const rows = await db
    .withTables<{ api_key_rate_windows: { key_id: string; used: number } }>()
    .selectFrom('api_key_rate_windows')
    .select('used')
    .where('key_id', '=', id)
    .execute();
  return Number(rows[0]?.used ?? 0);
}

type AdmitKey = Parameters<UsageGate['admit']>[0];

function admitMany(gate: UsageGate, key: AdmitKey, n: number): Promise<UsageDecision[]> {
  return Promise.all(Array.from({ length: n }, () => gate.admit(key)));
}

function count(decisions: UsageDecision[], what: 'ok' | 'rate_limited' | 'usage_exceeded'): number {
  return decisions.filter((d) => (what === 'ok' ? d.ok : d.code === what)).length;
}

async function withFixture(dialect: Parameters<typeof createTestDatabase>[0], body: (f: Fixture) => Promise<void>): Promise<void> {
  const tdb = await createTestDatabase(dialect);
  try {
    await body(await setUp(tdb));
  } finally {
    await tdb.dispose();
  }
}

// A real server process for the cross-process test: opens the test database, waits for "go" on
// stdin so that every child starts at once, admits `count` requests concurrently, closes the gate
// (returning unused credits) and prints its tally as one JSON line.
const CHILD = `
const { openDatabase } = await import(process.env.LK_DB_MODULE);
const { createUsageGate } = await import(process.env.LK_USAGE_MODULE);
const { manualClock } = await import(process.env.LK_CORE_MODULE);
const [url, dataDir, keyJson, count, start] = process.argv.slice(1);
const handle = openDatabase({ url: url || undefined, dataDir });
const gate = createUsageGate({ db: handle.db, clock: manualClock(new Date(Number(start))) });
gate.start();
const key = JSON.parse(keyJson);
await handle.ping();
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const decisions = await Promise.all(Array.from({ length: Number(count) }, () => gate.admit(key)));
await gate.close();
await handle.close();
const tally = (code) => decisions.filter((d) => (code ? d.code === code : d.ok)).length;
process.stdout.write(JSON.stringify({ ok: tally(), rate_limited: tally('rate_limited'), usage_exceeded: tally('usage_exceeded') }) + '\\n');
process.exit(0);
`;

type Tally = Record<'ok' | 'rate_limited' | 'usage_exceeded', number>;

/** Starts `processes` children, releases them together and sums their tallies. */
async function admitFromProcesses(tdb: TestDatabase, key: AdmitKey, processes: number, count: number): Promise<Tally> {
  const module = (path: string) => pathToFileURL(fileURLToPath(new URL(path, import.meta.url))).href;
  const env = {
    ...process.env,
    LK_DB_MODULE: module('../db/index.ts'),
    LK_USAGE_MODULE: module('./usage.ts'),
    LK_CORE_MODULE: module('../core/index.ts'),
  };
  const args = [tdb.url ?? '', tdb.dataDir, JSON.stringify(key), String(count), String(START.getTime())];
  const children = Array.from({ length: processes }, () => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD, ...args], {
      env,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    return { child, lines, exited };
  });
  for (const { lines } of children) assert.equal((await lines.next()).value, 'ready');
  for (const { child } of children) child.stdin.write('go\n');
  const total: Tally = { ok: 0, rate_limited: 0, usage_exceeded: 0 };
  for (const { lines, exited } of children) {
    const tally = JSON.parse(String((await lines.next()).value)) as Tally;
    for (const k of Object.keys(total) as Array<keyof Tally>) total[k] += tally[k];
    assert.equal(await exited, 0);
  }
  return total;
}

await eachDialect('usage gate', (dialect) => {
  it('rate limit under 50 concurrent requests: exactly the limit is admitted, the rest get 429 with a retry time', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const key = await insertKey(f, { rateLimit: { limit: 10, windowMs: 60_000 } });

      const decisions = await admitMany(gate, key, 50);
      assert.equal(count(decisions, 'ok'), 10);
      assert.equal(count(decisions, 'rate_limited'), 40);
      for (const d of decisions.filter((x) => !x.ok)) {
        assert.equal(d.retryAfterMs, 60_000);
        assert.deepEqual(d.rateLimit, { limit: 10, remaining: 0, resetAt: new Date(START.getTime() + 60_000).toISOString() });
      }
      assert.deepEqual(decisions.filter((d) => d.ok).map((d) => d.rateLimit?.remaining ?? -1).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal(await windowUsed(f.handle.db, key.id), 10);
      await gate.close();
    });
  });

  it('credits under 50 concurrent requests: exactly the balance is admitted and it never goes below zero', async () => {
    await withFixture(dialect, async (f) => {
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock: manualClock(START) });
      const key = await insertKey(f, { credits: 10 });

      const decisions = await admitMany(gate, key, 50);
      assert.equal(count(decisions, 'ok'), 10);
      assert.equal(count(decisions, 'usage_exceeded'), 40);
      for (const d of decisions.filter((x) => !x.ok)) {
        assert.equal(d.remaining, 0);
        assert.equal(d.retryAfterMs, undefined, 'no refill, so no retry time');
      }
      assert.deepEqual(decisions.filter((d) => d.ok).map((d) => d.remaining ?? -1).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      assert.equal(await creditsOf(f.handle.db, key.id), 0);
      await gate.close();
      assert.equal(await creditsOf(f.handle.db, key.id), 0);
    });
  });

  it('a request refused for credits takes no rate slot', async () => {
    await withFixture(dialect, async (f) => {
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock: manualClock(START) });
      const key = await insertKey(f, { rateLimit: { limit: 10, windowMs: 60_000 }, credits: 5 });

      const first = await admitMany(gate, key, 50);
      assert.equal(count(first, 'ok'), 5);
      assert.equal(count(first, 'usage_exceeded'), 45);

      // Top up the balance, as the key service would, and drop this process's view of the key.
      await f.handle.db.updateTable('api_keys').set({ credits_remaining: 100 }).where('id', '=', key.id).execute();
      gate.forget(key.id);
      await gate.flush();

      // Had the 45 refusals taken slots, the window would be full; 10 - 5 remain.
      const second = await admitMany(gate, key, 50);
      assert.equal(count(second, 'ok'), 5);
      assert.equal(count(second, 'rate_limited'), 45);
      assert.equal(await windowUsed(f.handle.db, key.id), 10);
      await gate.close();
      assert.equal(await creditsOf(f.handle.db, key.id), 95);
    });
  });

  it('a request refused by the rate limit takes no credit', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const key = await insertKey(f, { rateLimit: { limit: 5, windowMs: 60_000 }, credits: 20 });

      const first = await admitMany(gate, key, 50);
      assert.equal(count(first, 'ok'), 5);
      assert.equal(count(first, 'rate_limited'), 45);
      for (const d of first.filter((x) => !x.ok)) assert.equal(d.retryAfterMs, 60_000);

      clock.advance(60_000);
      const second = await admitMany(gate, key, 50);
      assert.equal(count(second, 'ok'), 5);
      await gate.close();
      assert.equal(await creditsOf(f.handle.db, key.id), 10);
    });
  });

  it('a full window answers rate_limited without reserving credits; an empty balance answers usage_exceeded', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const noRefill = await insertKey(f, { rateLimit: { limit: 1, windowMs: 60_000 }, credits: 1 });
      assert.equal((await gate.admit(noRefill)).ok, true);
      // The window is full and the balance empty; without a refill, credits never come back.
      const decisions = await admitMany(gate, noRefill, 3);
      assert.deepEqual(decisions.map((d) => d.code), ['rate_limited', 'rate_limited', 'rate_limited']);
      clock.advance(60_000);
      const later = await admitMany(gate, noRefill, 3);
      assert.deepEqual(later.map((d) => d.code), ['usage_exceeded', 'usage_exceeded', 'usage_exceeded']);
      await gate.close();
    });
  });

  it('two processes on one database admit exactly the rate limit between them', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const other = f.tdb.open();
      const a = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const b = createUsageGate({ db: other.db, flushIntervalMs: NO_TIMER, clock });
      const key = await insertKey(f, { rateLimit: { limit: 20, windowMs: 60_000 } });

      const [fromA, fromB] = await Promise.all([admitMany(a, key, 50), admitMany(b, key, 50)]);
      assert.equal(count(fromA, 'ok') + count(fromB, 'ok'), 20);
      assert.equal(count(fromA, 'rate_limited') + count(fromB, 'rate_limited'), 80);
      assert.equal(await windowUsed(f.handle.db, key.id), 20);
      await Promise.all([a.close(), b.close()]);
    });
  });

  it('two processes on one database admit exactly the credits between them and return what they did not use', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const other = f.tdb.open();
      const a = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const b = createUsageGate({ db: other.db, flushIntervalMs: NO_TIMER, clock });
      const scarce = await insertKey(f, { credits: 20 });
      const plenty = await insertKey(f, { credits: 1000 });

      const [fromA, fromB] = await Promise.all([admitMany(a, scarce, 50), admitMany(b, scarce, 50)]);
      assert.equal(count(fromA, 'ok') + count(fromB, 'ok'), 20);
      assert.equal(count(fromA, 'usage_exceeded') + count(fromB, 'usage_exceeded'), 80);
      assert.equal(await creditsOf(f.handle.db, scarce.id), 0);

      const [moreA, moreB] = await Promise.all([admitMany(a, plenty, 33), admitMany(b, plenty, 17)]);
      assert.equal(count(moreA, 'ok') + count(moreB, 'ok'), 50);
      await Promise.all([a.close(), b.close()]);
      assert.equal(await creditsOf(f.handle.db, scarce.id), 0);
      assert.equal(await creditsOf(f.handle.db, plenty.id), 950);
    });
  });

  it('three processes with limits that do not split into whole leases admit exactly the smaller of limit and balance', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const gates = [f.handle, f.tdb.open(), f.tdb.open()].map((h, i) => createUsageGate({ db: h.db, flushIntervalMs: NO_TIMER, clock, leaseSize: 4 + i }));
      const rateOnly = await insertKey(f, { rateLimit: { limit: 97, windowMs: 60_000 } });
      const both = await insertKey(f, { rateLimit: { limit: 97, windowMs: 60_000 }, credits: 53 });

      const rated = (await Promise.all(gates.map((g) => admitMany(g, rateOnly, 100)))).flat();
      assert.equal(count(rated, 'ok'), 97);
      assert.equal(await windowUsed(f.handle.db, rateOnly.id), 97);

      const mixed = (await Promise.all(gates.map((g) => admitMany(g, both, 100)))).flat();
      assert.equal(count(mixed, 'ok'), 53);
      assert.equal(count(mixed, 'usage_exceeded'), 247);
      await Promise.all(gates.map((g) => g.close()));
      assert.equal(await creditsOf(f.handle.db, both.id), 0);
      assert.ok((await windowUsed(f.handle.db, both.id)) <= 97);
    });
  });

  it('two server processes on one database never admit more than the rate limit or the credits', async () => {
    await withFixture(dialect, async (f) => {
      const rated = await insertKey(f, { rateLimit: { limit: 20, windowMs: 60_000 } });
      const tally = await admitFromProcesses(f.tdb, rated, 2, 50);
      assert.deepEqual(tally, { ok: 20, rate_limited: 80, usage_exceeded: 0 });

      const metered = await insertKey(f, { credits: 20 });
      assert.deepEqual(await admitFromProcesses(f.tdb, metered, 2, 50), { ok: 20, rate_limited: 0, usage_exceeded: 80 });
      assert.equal(await creditsOf(f.handle.db, metered.id), 0);

      const plenty = await insertKey(f, { credits: 1000 });
      assert.deepEqual(await admitFromProcesses(f.tdb, plenty, 2, 30), { ok: 60, rate_limited: 0, usage_exceeded: 0 });
      assert.equal(await creditsOf(f.handle.db, plenty.id), 940, 'every unused leased credit went back at close');
    });
  });

  it('rate slots come back when the window resets', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const key = await insertKey(f, { rateLimit: { limit: 3, windowMs: 1000 } });

      assert.equal(count(await admitMany(gate, key, 5), 'ok'), 3);
      clock.advance(400);
      const limited = await gate.admit(key);
      assert.equal(limited.code, 'rate_limited');
      assert.equal(limited.retryAfterMs, 600);
      assert.equal(limited.rateLimit?.resetAt, new Date(START.getTime() + 1000).toISOString());

      clock.advance(600);
      const next = await admitMany(gate, key, 5);
      assert.equal(count(next, 'ok'), 3);
      assert.equal(count(next, 'rate_limited'), 2);
      assert.equal(next.find((d) => !d.ok)?.retryAfterMs, 1000);
      await gate.close();
    });
  });

  it('credits refill by the amount for every whole interval, counted from the stored anchor', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const key = await insertKey(f, { credits: 2, refill: { amount: 3, intervalMs: 10_000 } });

      const first = await admitMany(gate, key, 5);
      assert.equal(count(first, 'ok'), 2);
      const refused = first.filter((d) => !d.ok);
      assert.equal(refused.length, 3);
      for (const d of refused) {
        assert.equal(d.code, 'usage_exceeded');
        assert.equal(d.retryAfterMs, 10_000);
      }

      clock.advance(9_999);
      assert.equal((await gate.admit(key)).code, 'usage_exceeded');
      clock.advance(1);
      const second = await admitMany(gate, key, 5);
      assert.equal(count(second, 'ok'), 3);
      assert.equal(count(second, 'usage_exceeded'), 2);

      // Two and a half intervals later: two refills, no more.
      clock.advance(25_000);
      const third = await admitMany(gate, key, 10);
      assert.equal(count(third, 'ok'), 6);
      assert.equal(third.find((d) => !d.ok)?.retryAfterMs, 5_000);
      await gate.close();
      const row = await f.handle.db.selectFrom('api_keys').select(['credits_remaining', 'credits_refilled_at']).where('id', '=', key.id).executeTakeFirstOrThrow();
      assert.equal(Number(row.credits_remaining), 0);
      assert.equal(row.credits_refilled_at, new Date(START.getTime() + 30_000).toISOString());
    });
  });

  it('touch() writes last_used_at only on flush, and never moves it backwards', async () => {
    await withFixture(dialect, async (f) => {
      const clock = manualClock(START);
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock });
      const one = await insertKey(f, {});
      const two = await insertKey(f, {});
      const lastUsed = async (id: string) =>
        (await f.handle.db.selectFrom('api_keys').select('last_used_at').where('id', '=', id).executeTakeFirstOrThrow()).last_used_at;

      clock.advance(5_000);
      gate.touch(one.id);
      gate.touch(two.id);
      clock.advance(1_000);
      gate.touch(one.id);
      assert.equal(await lastUsed(one.id), null);
      assert.equal(await lastUsed(two.id), null);

      await gate.flush();
      assert.equal(await lastUsed(one.id), new Date(START.getTime() + 6_000).toISOString());
      assert.equal(await lastUsed(two.id), new Date(START.getTime() + 5_000).toISOString());

      // Another process with a slower clock flushes an older time: the newer one stays.
      const behind = createUsageGate({ db: f.tdb.open().db, flushIntervalMs: NO_TIMER, clock: manualClock(START) });
      behind.touch(one.id);
      await behind.close();
      assert.equal(await lastUsed(one.id), new Date(START.getTime() + 6_000).toISOString());
      await gate.close();
    });
  });

  it('close() returns unused leased credits: the balance is the initial one minus what was admitted', async () => {
    await withFixture(dialect, async (f) => {
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock: manualClock(START), leaseSize: 10 });
      const key = await insertKey(f, { credits: 1000 });
      assert.equal(count(await admitMany(gate, key, 3), 'ok'), 3);
      // One lease of 10 is out: no write per request.
      assert.equal(await creditsOf(f.handle.db, key.id), 990);
      await gate.close();
      assert.equal(await creditsOf(f.handle.db, key.id), 997);
      await assert.rejects(gate.admit(key), { code: 'not_ready' });
    });
  });

  it('an idle lease goes back after one full flush interval without use', async () => {
    await withFixture(dialect, async (f) => {
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock: manualClock(START) });
      const key = await insertKey(f, { credits: 1000, rateLimit: { limit: 1000, windowMs: 60_000 } });
      await admitMany(gate, key, 3);
      await gate.flush();
      assert.equal(await creditsOf(f.handle.db, key.id), 990, 'used in the last interval: kept');
      assert.equal(await windowUsed(f.handle.db, key.id), 10);
      await gate.flush();
      assert.equal(await creditsOf(f.handle.db, key.id), 997);
      assert.equal(await windowUsed(f.handle.db, key.id), 3);
      const next = await gate.admit(key);
      assert.equal(next.remaining, 996);
      assert.equal(next.rateLimit?.remaining, 996);
      await gate.close();
    });
  });

  it('forget() returns the unused lease and the next request reads the database again', async () => {
    await withFixture(dialect, async (f) => {
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock: manualClock(START) });
      const key = await insertKey(f, { credits: 100 });
      assert.equal((await gate.admit(key)).remaining, 99);
      assert.equal(await creditsOf(f.handle.db, key.id), 90);
      gate.forget(key.id);
      await gate.flush();
      assert.equal(await creditsOf(f.handle.db, key.id), 99);
      // The balance is set to zero elsewhere: the next request reads it.
      await f.handle.db.updateTable('api_keys').set({ credits_remaining: 0 }).where('id', '=', key.id).execute();
      gate.forget(key.id);
      assert.equal((await gate.admit(key)).code, 'usage_exceeded');
      await gate.close();
    });
  });

  it('a key without limits is admitted without touching the database', async () => {
    await withFixture(dialect, async (f) => {
      const gate = createUsageGate({ db: f.handle.db, flushIntervalMs: NO_TIMER, clock: manualClock(START) });
      const key = await insertKey(f, {});
      assert.deepEqual(await gate.admit(key), { ok: true });
      assert.equal(await windowUsed(f.handle.db, key.id), 0);
      await gate.close();
    });
  });
});

it('refuses malformed policies and options with the field named', async () => {
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) });
  assert.throws(() => createUsageGate({ db, leaseSize: 0 }), { name: 'TypeError', message: '"options.leaseSize" must be a positive integer' });
  assert.throws(() => createUsageGate({ db, flushIntervalMs: 1.5 }), { message: '"options.flushIntervalMs" must be a positive integer' });
  const gate = createUsageGate({ db });
  const policy = (p: Partial<UsagePolicy>): UsagePolicy => ({ rateLimit: null, credits: null, ...p });
  const cases: Array<[unknown, string]> = [
    [null, '"key" must be an object'],
    [{ id: '', tenantId: 't', policy: policy({}) }, '"key.id" must be a non-empty string'],
    [{ id: 'k', policy: policy({}) }, '"key.tenantId" must be a string'],
    [{ id: 'k', tenantId: 't' }, '"key.policy" must be an object'],
    [{ id: 'k', tenantId: 't', policy: { credits: null } }, '"key.policy.rateLimit" must be an object or null'],
    [{ id: 'k', tenantId: 't', policy: policy({ rateLimit: { limit: 0, windowMs: 1000 } }) }, '"key.policy.rateLimit.limit" must be a positive integer'],
    [{ id: 'k', tenantId: 't', policy: policy({ rateLimit: { limit: 1, windowMs: -1 } }) }, '"key.policy.rateLimit.windowMs" must be a positive integer'],
    [{ id: 'k', tenantId: 't', policy: { rateLimit: null } }, '"key.policy.credits" must be an object or null'],
    [{ id: 'k', tenantId: 't', policy: policy({ credits: { remaining: 1, refill: { amount: 0, intervalMs: 1 } } }) }, '"key.policy.credits.refill.amount" must be a positive integer'],
    [{ id: 'k', tenantId: 't', policy: policy({ credits: { remaining: 1, refill: { amount: 1, intervalMs: NaN } } }) }, '"key.policy.credits.refill.intervalMs" must be a positive integer'],
  ];
  for (const [key, message] of cases) {
    await assert.rejects(gate.admit(key as AdmitKey), { name: 'TypeError', message });
  }
  assert.throws(() => gate.touch(''), { message: '"keyId" must be a non-empty string' });
  await gate.close();
  await db.destroy();
});
