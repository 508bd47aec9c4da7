import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import type { AppendDone, AppendJob, AppendWorkerData } from './sqlite-append-worker.js';

/** Inserts on a worker thread's own SQLite connection (see {@link createSqliteAppender}). */
export interface SqliteAppender {
  /** Runs `sql` (one row's insert) once per entry of `rows` in one transaction; resolves once it is committed. */
  append(sql: string, rows: unknown[][]): Promise<void>;
  /** Waits for the appends under way, then closes the thread's connection. */
  close(): Promise<void>;
}

/**
 * The thread's code: the compiled .js beside this file; from source (run through tsx) the .ts one,
 * loaded through tsx's API, since Node 20 applies no loader hooks to a worker's entry module.
 */
function startWorker(data: AppendWorkerData): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./sqlite-append-worker.js', import.meta.url), { workerData: data });
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./sqlite-append-worker.ts', import.meta.url).href;
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: data });
}

/**
 * A writer thread for appends that belong to no transaction of the caller's (the audit log's group
 * commit): with `synchronous = FULL` a commit waits for an fsync of the WAL, and better-sqlite3
 * waits on the calling thread, so on the main thread every commit stopped the whole server for
 * that long (about 0.3 ms here, more on a busy disk). On its own connection the commit is as
 * durable and is waited for by a promise instead; appends sent meanwhile queue in the thread.
 * The thread starts with the first append and is referenced only while appends are under way.
 * It takes SQLite's one write lock like any other connection (IMMEDIATE, the busy timeout).
 */
export function createSqliteAppender(path: string, busyTimeoutMs: number): SqliteAppender {
  let worker: Worker | undefined;
  let closed = false;
  let nextId = 0;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  let drained: (() => void) | undefined;

  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    drained?.();
  };

  const start = (): Worker => {
    const w = startWorker({ path, busyTimeoutMs });
    w.unref();
    w.on('message', (done: AppendDone) => {
      const p = pending.get(done.id);
      if (p === undefined) return;
      pending.delete(done.id);
      if (done.error === undefined) p.resolve();
      else p.reject(Object.assign(new Error(done.error.message), done.error.code === undefined ? {} : { code: done.error.code }));
      if (pending.size === 0) {
        w.unref();
        drained?.();
      }
    });
    w.on('error', (err) => failAll(err));
    w.on('exit', (code) => {
      if (worker === w) worker = undefined;
      failAll(new Error(`The SQLite writer thread stopped (exit code ${code}).`));
    });
    return w;
  };

  return {
    append(sql, rows) {
      if (closed) return Promise.reject(new Error('The database is closed.'));
      worker ??= start();
      const w = worker;
      const id = ++nextId;
      return new Promise<void>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (pending.size === 1) w.ref();
        w.postMessage({ id, sql, rows } satisfies AppendJob);
      });
    },
    async close() {
      closed = true;
      if (pending.size > 0) await new Promise<void>((resolve) => (drained = resolve));
      const w = worker;
      worker = undefined;
      if (w === undefined) return;
      const exited = once(w, 'exit');
      w.ref();
      w.postMessage({ close: true } satisfies AppendJob);
      await exited;
    },
  };
}
