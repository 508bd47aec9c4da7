// Fixtures for the identity tests: a migrated database, a started invalidation bus, an Identity,
// a tenant with one admin, and "peers" (another process's view: own handle, bus and Identity).
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import assert from 'node:assert/strict';
import { createLogger, type Clock, type Logger } from '../src/core/index.js';
import { InvalidationBus, type DatabaseHandle, type DialectName } from '../src/db/index.js';
import { createIdentity, generatePassword, type Actor, type Identity, type SessionOptions } from '../src/identity/index.js';
import { createTestDatabase, type TestDatabase } from './support/databases.js';

export interface IdentityPeer {
  handle: DatabaseHandle;
  bus: InvalidationBus;
  identity: Identity;
}

export interface IdentityFixture extends IdentityPeer {
  tdb: TestDatabase;
  /** A tenant with one admin user. */
  tenantId: string;
  adminId: string;
  admin: Actor;
  /** Everything the fixture's logger wrote. */
  logs: () => string;
  /** Another process's view of the same database (own handle, bus and caches). */
  peer(options?: { boundMs?: number; clock?: Clock }): Promise<IdentityPeer>;
  /** Another Identity on the same handle and bus (another instance in this process). */
  sibling(): Identity;
  /**
   * Another Identity to race this one: on PostgreSQL with its own pool, bus and caches (another
   * process); on SQLite on the same connection, because two SQLite connections in one process
   * block each other's event loop while waiting for the write lock (real processes do not).
   */
  contender(): Promise<Identity>;
  dispose(): Promise<void>;
}

export interface FixtureOptions {
  boundMs?: number;
  clock?: Clock;
  sessions?: SessionOptions;
  /** Skip creating the tenant and admin (for bootstrap tests). */
  empty?: boolean;
}

/** A random password (or any secret) for one test. */
export function randomSecret(): string {
  return generatePassword(16 + (randomBytes(1)[0] ?? 0) % 16);
}

/** A random tenant, user or group name. */
export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

export async function until(check: () => Promise<boolean> | boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Asserts that `promise` rejects with a LatchkeyError of `code`, and returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<Error & { code: string; details?: Record<string, unknown> }> {
  let caught: unknown;
  await assert.rejects(promise, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.equal((caught as { code?: string }).code, code, `expected code ${code}, got ${String((caught as Error).message)}`);
  return caught as Error & { code: string };
}

function memoryLogger(): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), text: () => chunks.join('') };
}

/** Migrates (src/db/migrator.ts retries the catalog race with schemas dropped in parallel). */
export async function openMigrated(tdb: TestDatabase): Promise<DatabaseHandle> {
  return tdb.openMigrated();
}

export async function createIdentityFixture(dialect: DialectName, options: FixtureOptions = {}): Promise<IdentityFixture> {
  const tdb = await createTestDatabase(dialect);
  const buses: InvalidationBus[] = [];
  const { logger, text } = memoryLogger();
  const start = async (handle: DatabaseHandle, boundMs: number, clock?: Clock): Promise<IdentityPeer> => {
    const bus = new InvalidationBus({ handle, boundMs });
    await bus.start();
    buses.push(bus);
    const identity = createIdentity({ db: handle.db, appendRows: (table, rows) => handle.appendRows(table, rows), bus, logger, ...(clock ? { clock } : {}), ...(options.sessions ? { sessions: options.sessions } : {}) });
    return { handle, bus, identity };
  };
  try {
    const handle = await openMigrated(tdb);
    const main = await start(handle, options.boundMs ?? 5000, options.clock);
    let tenantId = '';
    let adminId = '';
    if (!options.empty) {
      const system: Actor = { type: 'system' };
      tenantId = (await main.identity.tenants.create({ name: randomName('t') })).id;
      adminId = (await main.identity.users.create(system, tenantId, { username: 'root', roles: ['admin'] })).id;
    }
    const sibling = () => createIdentity({ db: handle.db, bus: main.bus, logger, ...(options.clock ? { clock: options.clock } : {}) });
    return {
      ...main,
      tdb,
      tenantId,
      adminId,
      admin: { type: 'user', tenantId, userId: adminId },
      logs: text,
      peer: (peerOptions = {}) => start(tdb.open(), peerOptions.boundMs ?? options.boundMs ?? 5000, peerOptions.clock),
      sibling,
      contender: async () => (dialect === 'postgres' ? (await start(tdb.open(), options.boundMs ?? 5000, options.clock)).identity : sibling()),
      async dispose() {
        await Promise.all(buses.map((b) => b.stop()));
        await tdb.dispose();
      },
    };
  } catch (err) {
    await Promise.all(buses.map((b) => b.stop()));
    await tdb.dispose();
    throw err;
  }
}
