// The peer for `npm run bench:apikeys`: better-auth with @better-auth/api-key on SQLite
// (better-sqlite3), as a TypeScript developer would set it up, verifying through its server-side
// API (`auth.api.verifyApiKey`).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { apiKey } from '@better-auth/api-key';
import SQLite from 'better-sqlite3';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';

export interface PeerOptions {
  /** A directory for the database file; undefined: an in-memory database. */
  dataDir: string | undefined;
}

export interface Peer {
  /** What the database is, for the report. */
  label: string;
  /** One verification of the key issued at start; throws unless better-auth says it is valid. */
  verify(): Promise<void>;
  close(): void;
}

/**
 * better-auth with the api-key plugin on one SQLite database, migrated with its own migrator, one
 * user and one key. Rate limiting is off (its default is 10 requests a day), so the key is, like
 * Latchkey's here, a key without limits. A database file gets the pragmas Latchkey's SQLite file
 * has (WAL, synchronous FULL), so both run at the same durability.
 */
export async function createPeer(options: PeerOptions): Promise<Peer> {
  const path = options.dataDir === undefined ? ':memory:' : join(options.dataDir, 'better-auth.db');
  const database = new SQLite(path);
  if (options.dataDir !== undefined) {
    database.pragma('journal_mode = WAL');
    database.pragma('synchronous = FULL');
  }
  const auth = betterAuth({
    database,
    secret: randomBytes(32).toString('base64'),
    baseURL: 'http://127.0.0.1:3000',
    emailAndPassword: { enabled: true },
    logger: { disabled: true },
    telemetry: { enabled: false },
    plugins: [apiKey({ rateLimit: { enabled: false } })],
  });
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();

  const signUp = await auth.api.signUpEmail({
    body: { email: 'bench@example.com', password: randomBytes(18).toString('base64url'), name: 'bench' },
  });
  const created = await auth.api.createApiKey({ body: { userId: signUp.user.id, name: 'bench' } });
  const key = created.key;

  const verify = async () => {
    const result = await auth.api.verifyApiKey({ body: { key } });
    if (!result.valid) throw new Error(`better-auth refused its own key: ${JSON.stringify(result.error)}`);
  };
  await verify();
  return {
    label: options.dataDir === undefined ? 'in-memory SQLite' : 'SQLite file (WAL, synchronous FULL)',
    verify,
    close: () => database.close(),
  };
}
