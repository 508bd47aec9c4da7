import { createHash } from 'node:crypto';
import pg from 'pg';
import { Kysely, PostgresDialect, sql, type CompiledQuery, type QueryResult } from 'kysely';
import type { DatabaseHandle } from './adapter.js';
import type { Database } from './schema.js';

export interface PostgresOptions {
  url: string;
  maxConnections?: number;
  connectionTimeoutMs?: number;
}

/** Where a PostgreSQL URL points, without user or password. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}${parsed.pathname || '/'}`;
  } catch {
    return 'postgres (unparseable URL)';
  }
}

/**
 * LISTEN on a dedicated client. A dropped connection is re-established after a short pause; what
 * was missed meanwhile is caught by the caller's polling.
 */
async function listen(url: string, channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new TypeError(`Invalid channel name "${channel}".`);
  let stopped = false;
  let client: pg.Client | undefined;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: url, application_name: 'latchkey-listen' });
    c.on('notification', (msg) => {
      if (msg.channel === channel) onNotify(msg.payload ?? '');
    });
    c.on('error', () => {
      if (stopped) return;
      client = undefined;
      void c.end().catch(() => {});
      retry = setTimeout(() => void connect().catch(() => {}), 500);
    });
    await c.connect();
    await c.query(`LISTEN ${c.escapeIdentifier(channel)}`);
    if (stopped) {
      await c.end().catch(() => {});
      return;
    }
    client = c;
  };
  await connect();
  return async () => {
    stopped = true;
    if (retry) clearTimeout(retry);
    await client?.end().catch(() => {});
  };
}

/** At most this many texts get a prepared statement's name; the rest run unnamed (as Kysely runs every query). */
const MAX_PREPARED_TEXTS = 64;

/** PostgreSQL's "cached plan must not change result type": a prepared statement outlived a change of its table. */
const PLAN_CHANGED = '0A000';

/**
 * Named prepared statements for {@link DatabaseHandle.executeRepeated}: pg parses a name's text once per
 * connection and then sends only Bind and Execute. A statement prepared before a migration changed
 * its table's columns fails with 0A000; that connection is dropped and the query runs once more on
 * another, which prepares it afresh (the failed execution changed nothing).
 */
function repeatedQueries(pool: pg.Pool): <R>(query: CompiledQuery<R>) => Promise<QueryResult<R>> {
  const names = new Map<string, string>();
  const nameOf = (text: string): string | undefined => {
    let name = names.get(text);
    if (name === undefined && names.size < MAX_PREPARED_TEXTS) {
      name = `latchkey_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
      names.set(text, name);
    }
    return name;
  };
  const run = async <R>(query: CompiledQuery<R>, retried: boolean): Promise<QueryResult<R>> => {
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      const name = nameOf(query.sql);
      const result = await client.query<R & pg.QueryResultRow>(name === undefined ? { text: query.sql, values: [...query.parameters] } : { name, text: query.sql, values: [...query.parameters] });
      return { rows: result.rows, ...(result.rowCount !== null ? { numAffectedRows: BigInt(result.rowCount) } : {}) };
    } catch (err) {
      if ((err as { code?: unknown }).code !== PLAN_CHANGED || retried) throw err;
      broken = err as Error;
    } finally {
      client.release(broken);
    }
    return run(query, true);
  };
  return (query) => run(query, false);
}

/** The shared database: a pg pool behind Kysely. */
export function openPostgres(options: PostgresOptions): DatabaseHandle {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMs ?? 5000,
    application_name: 'latchkey',
  });
  // An idle client that loses its connection emits 'error' on the pool; without a listener that
  // would crash the process. The next checkout reconnects.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  let closed = false;
  return {
    db,
    dialect: 'postgres',
    supportsRowLocks: true,
    supportsNotify: true,
    location: describePostgresUrl(options.url),
    listen: (channel, onNotify) => listen(options.url, channel, onNotify),
    executeRepeated: repeatedQueries(pool),
    withMigrationLock: (fn) => fn(),
    async appendRows(table, rows) {
      if (rows.length === 0) return;
      await db.insertInto(table).values(rows as never).execute();
    },
    async ping() {
      await sql`select 1`.execute(db);
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}
