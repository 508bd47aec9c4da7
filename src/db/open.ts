import { join } from 'node:path';
import type { DatabaseHandle } from './adapter.js';
import { openPostgres } from './postgres.js';
import { openSqlite } from './sqlite.js';

export interface OpenDatabaseOptions {
  /** `postgres://...`; unset for SQLite in the data directory. */
  url?: string | undefined;
  dataDir: string;
}

/** The SQLite file used when no database URL is set. */
export function sqlitePath(dataDir: string): string {
  return join(dataDir, 'latchkey.db');
}

/**
 * Opens the configured database: PostgreSQL for a `postgres://` URL, else the embedded SQLite file.
 *
 * @example
 * const handle = openDatabase({ dataDir: './data' });
 * await handle.ping();
 */
export function openDatabase(options: OpenDatabaseOptions): DatabaseHandle {
  if (options.url) return openPostgres({ url: options.url });
  return openSqlite({ path: sqlitePath(options.dataDir) });
}
