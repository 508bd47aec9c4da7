// `getAccessToken` on a fresh token for `npm run bench:tokens`: the token client with its default
// (`cacheMs` 0: one database read and decryption per call) and with its in-process cache
// (`cacheMs` > 0: a Map lookup and one AES-256-GCM decryption per hit), on SQLite and PostgreSQL,
// next to the floor (a Map lookup + an AES-256-GCM decryption of the same token with node:crypto),
// measured in interleaved rounds of the same run.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { DialectName } from '../src/db/index.js';
import { resolvedClientFor as sharedClientFor } from '../test/support/token-children.js';
import { CONNECTION_TYPE, connectionId, createConnectionStore, createTokenClient, type ResolvedClient, type TokenClient } from '../src/oauth/index.js';
import type { TestProvider } from '../test/support/oidc-provider.js';
import { createStoreFixture, type StoreFixture } from '../test/support/store.js';
import { runFor, runForAsync, runner, stats, type OpStats, type Runner } from './support.js';

export interface FreshSettings {
  rounds: number;
  roundMs: number;
  warmupMs: number;
  /** `cacheMs` of the cached token client. */
  cacheMs: number;
}

export interface FreshDialect {
  dialect: DialectName;
  /** `cacheMs` 0 (the default): every call reads and decrypts the connection. */
  uncached: OpStats;
  /** `cacheMs` > 0: every call after the first is a cache hit. */
  cached: OpStats;
  /** The connection's row read with the store's own query (Kysely), nothing parsed or decrypted. */
  rowRead: OpStats;
  /** `store.getDecrypted`: the row read, both tokens decrypted (what `getAccessToken` does with `cacheMs` 0). */
  rowReadDecrypt: OpStats;
}

export interface FreshResult {
  floor: OpStats;
  dialects: FreshDialect[];
  /** Characters of the access token (oidc-provider's opaque tokens), also the floor's plaintext. */
  tokenLength: number;
  /** Entries of the floor's Map. */
  floorEntries: number;
  /** From the first cached call (warm-up) to the last timed one. */
  durationMs: number;
}

interface Contender {
  r: Runner;
  op: () => Promise<void>;
}

interface DialectBench {
  dialect: DialectName;
  f: StoreFixture;
  accessToken: string;
  uncached: Contender;
  cached: Contender;
  rowRead: Contender;
  rowReadDecrypt: Contender;
}

const dialectLabel = (d: DialectName) => (d === 'sqlite' ? 'SQLite' : 'PostgreSQL');
const random = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

/** The test provider's client for a shared connector, asking for `api:read`. */
export function resolvedClientFor(op: TestProvider, connectorId: string): ResolvedClient {
  return sharedClientFor(op, connectorId, ['api:read']);
}

/** A connection whose access token (minted at the provider, valid for an hour) is fresh, and token clients on it. */
async function openDialect(dialect: DialectName, op: TestProvider, settings: FreshSettings): Promise<DialectBench> {
  const f = await createStoreFixture(dialect, [CONNECTION_TYPE]);
  try {
    const tenantId = random('t');
    const connectorId = random('conn');
    const resolved = resolvedClientFor(op, connectorId);
    const minted = await op.mintGrant({ accountId: random('acct'), scope: 'offline_access api:read' });
    await createConnectionStore({ store: f.store }).save(tenantId, connectorId, null, {
      accessToken: minted.accessToken,
      refreshToken: minted.refreshToken,
      tokenType: 'bearer',
      scopes: ['offline_access', 'api:read'],
      expiresAt: new Date(Date.now() + 60 * 60_000).toISOString(),
    });
    const client = (cacheMs: number): TokenClient =>
      createTokenClient({ store: f.store, cacheMs, resolveClient: async () => resolved });
    const get = (tokens: TokenClient) => async () => {
      const token = await tokens.getAccessToken(tenantId, connectorId);
      if (token.accessToken !== minted.accessToken) throw new Error(`${dialect}: getAccessToken answered another token`);
    };
    const id = connectionId(connectorId);
    const label = dialectLabel(dialect);
    const bench: DialectBench = {
      dialect,
      f,
      accessToken: minted.accessToken,
      uncached: { r: runner(`getAccessToken, cacheMs 0 (default), ${label}`), op: get(client(0)) },
      cached: { r: runner(`getAccessToken, cacheMs ${settings.cacheMs} (cache hit), ${label}`), op: get(client(settings.cacheMs)) },
      rowRead: {
        r: runner(`the row read: store's SELECT by id, tenant and type through Kysely, ${label}`),
        op: async () => {
          const row = await f.handle.db
            .selectFrom('objects')
            .selectAll()
            .where('id', '=', id)
            .where('tenant_id', '=', tenantId)
            .where('type', '=', CONNECTION_TYPE.name)
            .executeTakeFirst();
          if (row?.id !== id) throw new Error('the row read answered another row');
        },
      },
      rowReadDecrypt: {
        r: runner(`store.getDecrypted: the row read, both tokens decrypted, validated, ${label}`),
        op: async () => {
          const object = await f.store.getDecrypted(CONNECTION_TYPE.name, tenantId, id);
          if (object.attributes['accessToken'] !== minted.accessToken) throw new Error('store.getDecrypted answered another token');
        },
      },
    };
    return bench;
  } catch (err) {
    await f.dispose();
    throw err;
  }
}

/** The floor: what any in-process token cache must do per call, on the same token. */
function floorOp(accessToken: string, entries: number): () => void {
  const key = randomBytes(32);
  const seal = (plaintext: string) => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { iv, sealed, tag: cipher.getAuthTag() };
  };
  // As many other connections as a busy process might cache; the lookup is by tenant and connector.
  const table = new Map<string, { iv: Buffer; sealed: Buffer; tag: Buffer }>();
  for (let i = 1; i < entries; i++) table.set(`${random('t')}\n${random('conn')}`, seal(randomBytes(32).toString('base64url')));
  const lookup = `${random('t')}\n${random('conn')}`;
  table.set(lookup, seal(accessToken));
  return () => {
    const entry = table.get(lookup);
    if (entry === undefined) throw new Error('floor: lookup failed');
    const decipher = createDecipheriv('aes-256-gcm', key, entry.iv);
    decipher.setAuthTag(entry.tag);
    const token = Buffer.concat([decipher.update(entry.sealed), decipher.final()]).toString('utf8');
    if (token.length !== accessToken.length) throw new Error('floor: wrong plaintext');
  };
}

/**
 * Measures, round by round (the order reversed every other round): the floor, then per dialect the
 * cached and uncached token clients and the two store reads the uncached path is made of. Every
 * call checks that it got the stored token back.
 */
export async function benchFresh(op: TestProvider, dialects: readonly DialectName[], settings: FreshSettings, log: (m: string) => void): Promise<FreshResult> {
  const benches: DialectBench[] = [];
  try {
    for (const dialect of dialects) benches.push(await openDialect(dialect, op, settings));
    const first = benches[0];
    if (!first) throw new Error('no database to measure');
    const floorEntries = 10_000;
    const floorRunner = runner('floor: Map lookup + AES-256-GCM decryption of the token (node:crypto)');
    const floor = floorOp(first.accessToken, floorEntries);
    const contenders = benches.flatMap((b) => [b.cached, b.uncached, b.rowReadDecrypt, b.rowRead]);

    const started = performance.now();
    log(`fresh token: warm-up ${settings.warmupMs} ms per contender, then ${settings.rounds} rounds of ${settings.roundMs} ms`);
    runFor(undefined, floor, settings.warmupMs);
    for (const c of contenders) await runForAsync(undefined, c.op, settings.warmupMs);
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? contenders : [...contenders].reverse();
      runFor(floorRunner, floor, settings.roundMs);
      for (const c of order) await runForAsync(c.r, c.op, settings.roundMs);
    }
    return {
      floor: stats(floorRunner),
      dialects: benches.map((b) => ({
        dialect: b.dialect,
        uncached: stats(b.uncached.r),
        cached: stats(b.cached.r),
        rowRead: stats(b.rowRead.r),
        rowReadDecrypt: stats(b.rowReadDecrypt.r),
      })),
      tokenLength: first.accessToken.length,
      floorEntries,
      durationMs: performance.now() - started,
    };
  } finally {
    for (const b of benches) await b.f.dispose();
  }
}
