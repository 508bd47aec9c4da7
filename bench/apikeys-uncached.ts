// Uncached verification for `npm run bench:apikeys`: a verifier whose cache does not hold the key,
// so every call reads the key's row from the database, with 1,000 and with 1,000,000 keys in the
// table, on SQLite and on PostgreSQL.
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { ApiKeyVerifier, createUsageGate } from '../src/apikeys/index.js';
import type { DatabaseHandle, DialectName } from '../src/db/index.js';
import { createTestDatabase } from '../test/support/databases.js';
import { fillApiKeys, newEncryptionKey, openLatchkey, type BenchLatchkey, type SampleKey } from './apikeys-latchkey.js';
import { runner, stats, timed, type OpStats } from './support.js';

export interface UncachedSettings {
  /** Verifications timed per table size and database. */
  measured: number;
  /** Untimed verifications first (JIT, connections, pepper and permission caches). */
  warmup: number;
}

export interface UncachedResult {
  dialect: DialectName;
  keys: number;
  /** Real keys in the table (the rest is filler of the same shape). */
  realKeys: number;
  /** How many verifier instances the timed verifications were spread over (fresh cache each). */
  verifiers: number;
  setupMs: number;
  stats: OpStats;
  storage: StorageFacts;
}

/** How big the table is next to the database's own page cache, and (PostgreSQL) where its pages came from. */
export interface StorageFacts {
  /** api_keys with its indexes (PostgreSQL), or the whole database file (SQLite). */
  tableBytes: number;
  /** shared_buffers (PostgreSQL) or the connection's page cache (SQLite cache_size). */
  cacheBytes: number;
  /**
   * PostgreSQL: blocks of api_keys and its indexes found in shared buffers (hit) or read from the
   * operating system (read) while the verifications ran (warm-up included), with the last-used
   * write-back they cause. Undefined on SQLite, which does not count them.
   */
  blocks: { hit: number; read: number } | undefined;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/**
 * A verifier as createApiKeys builds one, sharing the process's hasher (the tenant pepper is read
 * once per process by design) and authorizer, with an empty key cache.
 */
function freshVerifier(bench: BenchLatchkey, usage: ReturnType<typeof createUsageGate>): ApiKeyVerifier {
  const { latchkey } = bench;
  return new ApiKeyVerifier({
    db: latchkey.database.db,
    hasher: latchkey.apiKeys.hasher,
    authorizer: latchkey.identity.authorizer,
    audit: latchkey.identity.audit,
    bus: latchkey.bus,
    usage,
  });
}

/** Verifies each key once with `verifier`, timing each call into `r` (none: a warm-up). */
async function verifyEach(verifier: ApiKeyVerifier, keys: readonly SampleKey[], r: ReturnType<typeof runner> | undefined): Promise<void> {
  for (const { id, key } of keys) {
    if (verifier.cacheState(id) !== undefined) throw new Error(`key ${id} was already cached`);
    const start = performance.now();
    const result = await verifier.verify(key);
    const ms = performance.now() - start;
    if (!result.valid) throw new Error(`uncached verification of ${id} failed: ${result.code}`);
    if (r) {
      r.samples.push(ms);
      r.totalMs += ms;
    }
  }
}

interface Table {
  dialect: DialectName;
  total: number;
  bench: BenchLatchkey;
  /** A handle of its own for reading sizes and statistics. */
  stats: DatabaseHandle;
  blocksBefore: { hit: number; read: number } | undefined;
  usage: ReturnType<typeof createUsageGate>;
  keys: SampleKey[];
  setupMs: number;
  /** Where the next round starts in `keys` (they are taken in turn, wrapping around). */
  next: number;
  verifiers: number;
  r: ReturnType<typeof runner>;
}

/** api_keys' block counters (PostgreSQL), as flushed by the backends so far. */
async function blockCounters(handle: DatabaseHandle): Promise<{ hit: number; read: number } | undefined> {
  if (handle.dialect !== 'postgres') return undefined;
  const { rows } = await sql<{ hit: string; read: string }>`
    select coalesce(heap_blks_hit, 0) + coalesce(idx_blks_hit, 0) as hit, coalesce(heap_blks_read, 0) + coalesce(idx_blks_read, 0) as read
    from pg_statio_user_tables where relname = 'api_keys' and schemaname = current_schema()`.execute(handle.db);
  const row = rows[0];
  return row === undefined ? undefined : { hit: Number(row.hit), read: Number(row.read) };
}

async function storageSizes(handle: DatabaseHandle): Promise<{ tableBytes: number; cacheBytes: number }> {
  if (handle.dialect === 'postgres') {
    const { rows } = await sql<{ table: string; cache: string }>`
      select pg_total_relation_size('api_keys') as table,
             (select setting::bigint * 8192 from pg_settings where name = 'shared_buffers') as cache`.execute(handle.db);
    return { tableBytes: Number(rows[0]?.table), cacheBytes: Number(rows[0]?.cache) };
  }
  const page = await sql<{ page_size: number }>`pragma page_size`.execute(handle.db);
  const count = await sql<{ page_count: number }>`pragma page_count`.execute(handle.db);
  const cache = await sql<{ cache_size: number }>`pragma cache_size`.execute(handle.db);
  const pageSize = Number(page.rows[0]?.page_size);
  const cacheSize = Number(cache.rows[0]?.cache_size);
  // A negative cache_size is in KiB; a positive one in pages.
  return { tableBytes: pageSize * Number(count.rows[0]?.page_count), cacheBytes: cacheSize < 0 ? -cacheSize * 1024 : cacheSize * pageSize };
}

/** PostgreSQL backends flush their statistics when they exit; give them a moment. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 500));

/**
 * Fills a fresh database with `total` keys (not timed), then opens Latchkey on it afresh, as a
 * server started on an existing database would (and so that on PostgreSQL the fill's statistics
 * are flushed before the verifications are counted).
 */
async function openTable(dialect: DialectName, total: number, realKeys: number, log: (message: string) => void, cleanup: (() => Promise<void>)[]): Promise<Table> {
  const tdb = await createTestDatabase(dialect);
  cleanup.push(() => tdb.dispose());
  const encryptionKey = newEncryptionKey();
  const filler = await openLatchkey(tdb, encryptionKey);
  cleanup.push(() => filler.close());
  log(`uncached ${dialect}, ${total.toLocaleString('en-US')} keys: filling the table (not timed)`);
  const filled = await timed(() =>
    fillApiKeys(filler, { total, sample: realKeys, rowsPerStatement: dialect === 'sqlite' ? 1000 : 2000, rowsPerTransaction: 50_000 }),
  );
  // What autovacuum does to a freshly loaded table: statistics and the visibility map.
  if (dialect === 'postgres') await sql`vacuum analyze api_keys`.execute(filler.latchkey.database.db);
  const count = await filler.latchkey.database.db.selectFrom('api_keys').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  if (Number(count.n) !== total) throw new Error(`api_keys holds ${count.n} rows, wanted ${total}`);
  log(`uncached ${dialect}, ${total.toLocaleString('en-US')} keys: filled in ${(filled.ms / 1000).toFixed(1)} s`);
  await filler.close();
  const bench = await openLatchkey(tdb, encryptionKey);
  cleanup.push(() => bench.close());
  const usage = createUsageGate({ db: bench.latchkey.database.db });
  cleanup.push(() => usage.close());
  const stats = tdb.open();
  await settle();
  return {
    dialect,
    total,
    bench,
    stats,
    blocksBefore: await blockCounters(stats),
    usage,
    keys: shuffled(filled.value),
    setupMs: filled.ms,
    next: 0,
    verifiers: 0,
    r: runner(`uncached verify, ${total.toLocaleString('en-US')} keys`),
  };
}

/** The next `n` keys of the table, in turn; `n` never exceeds the number of real keys. */
function take(table: Table, n: number): SampleKey[] {
  const out: SampleKey[] = [];
  for (let i = 0; i < n; i++) {
    out.push(table.keys[table.next] as SampleKey);
    table.next = (table.next + 1) % table.keys.length;
  }
  return out;
}

/**
 * Every table size on one database, each in its own database: fills them (not timed), then
 * verifies real keys in rounds that alternate between the sizes, so that a burst of other work on
 * the machine falls on every size alike. Each round gives each size a fresh verifier (an empty
 * cache) and a block of keys taken in turn: with at least `warmup + measured` real keys (the big
 * tables) no key is verified twice; with fewer (1,000 keys) a key comes round again, but never to
 * a verifier that has seen it. Each table's usage gate flushes its last-used times on its own
 * schedule while that table is timed, and once more, untimed, at the end of each block.
 */
export async function benchUncached(
  dialect: DialectName,
  sizes: readonly number[],
  settings: UncachedSettings & { rounds: number },
  log: (message: string) => void,
): Promise<UncachedResult[]> {
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const tables: Table[] = [];
    for (const total of sizes) tables.push(await openTable(dialect, total, Math.min(total, settings.measured + settings.warmup), log, cleanup));
    for (const table of tables) {
      const verifier = freshVerifier(table.bench, table.usage);
      await verifyEach(verifier, take(table, Math.min(settings.warmup, table.keys.length)), undefined);
      await verifier.close();
    }
    log(`uncached ${dialect}: verifying in ${settings.rounds} alternating rounds`);
    const perRound = Math.ceil(settings.measured / settings.rounds);
    for (let round = 0; round < settings.rounds; round++) {
      for (const table of round % 2 === 0 ? tables : [...tables].reverse()) {
        const verifier = freshVerifier(table.bench, table.usage);
        const block = Math.min(perRound, settings.measured - table.r.samples.length, table.keys.length);
        await verifyEach(verifier, take(table, block), table.r);
        await verifier.close();
        table.verifiers++;
        // Untimed: write this block's last-used times now, so that the write-back of one table
        // does not run while the other table is timed (a server has one table, not two).
        await table.usage.flush();
      }
    }
    const results: UncachedResult[] = [];
    for (const t of tables) {
      // Closing the pools ends their backends, which flush their statistics.
      await t.usage.close();
      await t.bench.close();
    }
    if (dialect === 'postgres') await settle();
    for (const t of tables) {
      const after = await blockCounters(t.stats);
      const blocks = t.blocksBefore && after ? { hit: after.hit - t.blocksBefore.hit, read: after.read - t.blocksBefore.read } : undefined;
      results.push({
        dialect,
        keys: t.total,
        realKeys: t.keys.length,
        verifiers: t.verifiers,
        setupMs: t.setupMs,
        stats: stats(t.r),
        storage: { ...(await storageSizes(t.stats)), blocks },
      });
    }
    return results;
  } finally {
    for (const step of cleanup.reverse()) await step();
  }
}
