// The thread behind SQLite's appendRows (sqlite-append.ts): its own connection to the database
// file, on which each job (one prepared insert, many rows) is one IMMEDIATE transaction. The
// commit, with its fsync (synchronous = FULL), waits here instead of on the event loop.
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

/** What the main thread sends: rows to insert with `sql` in one transaction, or the order to close. */
export type AppendJob = { id: number; sql: string; rows: unknown[][] } | { close: true };
/** The answer to a job: committed, or why not. */
export interface AppendDone {
  id: number;
  error?: { message: string; code?: string };
}
export interface AppendWorkerData {
  path: string;
  busyTimeoutMs: number;
}

/** Distinct statements kept prepared (a few per table shape). */
const MAX_STATEMENTS = 32;

const port = parentPort;
if (port === null) throw new Error('sqlite-append-worker.ts runs as a worker thread only.');
const { path, busyTimeoutMs } = workerData as AppendWorkerData;
const db = new SQLite(path);
db.pragma(`busy_timeout = ${Math.trunc(busyTimeoutMs)}`);
db.pragma('foreign_keys = ON');
// As the main connection: a commit survives power loss, not only a process crash.
db.pragma('synchronous = FULL');
const statements = new Map<string, SQLite.Statement>();
const insertAll = db.transaction((statement: SQLite.Statement, rows: unknown[][]) => {
  for (const row of rows) statement.run(row);
});

port.on('message', (job: AppendJob) => {
  if ('close' in job) {
    db.close();
    port.close();
    return;
  }
  try {
    let statement = statements.get(job.sql);
    if (statement === undefined) {
      if (statements.size >= MAX_STATEMENTS) statements.clear();
      statement = db.prepare(job.sql);
      statements.set(job.sql, statement);
    }
    insertAll.immediate(statement, job.rows);
    port.postMessage({ id: job.id } satisfies AppendDone);
  } catch (err) {
    const { message, code } = err as { message?: string; code?: string };
    port.postMessage({ id: job.id, error: { message: message ?? String(err), ...(typeof code === 'string' ? { code } : {}) } } satisfies AppendDone);
  }
});
