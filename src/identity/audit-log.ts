import { randomBytes } from 'node:crypto';
import type { Insertable, Kysely, Transaction } from 'kysely';
import { LatchkeyError, SECRET_FIELDS, systemClock, type Clock } from '../core/index.js';
import type { Database, DatabaseHandle } from '../db/index.js';
import { actorLabel, type Actor } from './actor.js';
import { assertId } from './validation.js';

/** One entry of a tenant's audit log. */
export interface AuditEvent {
  id: string;
  tenantId: string;
  /** UTC ISO-8601. */
  at: string;
  /** `user:<id>`, `api_key:<id>`, `end_user:<id>` or `system` (see actorLabel). */
  actor: string;
  action: string;
  target: string | null;
  details: Record<string, unknown> | null;
}

export interface AuditRecord {
  tenantId: string;
  actor: Actor;
  action: string;
  target?: string;
  details?: Record<string, unknown>;
}

export interface AuditListOptions {
  /** 1 to 500; default 50. */
  limit?: number;
  /** The `next` cursor of the previous page. */
  before?: string;
  /** Only events with this action. */
  action?: string;
  /** Only events about this target. */
  target?: string;
  /** Only events by this actor (`user:<id>`, `api_key:<id>`, `end_user:<id>`, `system`). */
  actor?: string;
  /** Only events at or after this time (an ISO-8601 date and time). */
  since?: string;
  /** Only events before this time (an ISO-8601 date and time). */
  until?: string;
}

/** A time bound of a listing as stored (`toISOString`, so strings compare as times), or a field error. */
function timeBound(value: string, field: 'since' | 'until'): string {
  const ms = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new LatchkeyError('validation_failed', `The audit log "${field}" must be a date and time such as "2026-01-31T12:00:00Z".`, {
      details: { fields: [{ path: field, message: 'must be a date and time such as "2026-01-31T12:00:00Z"' }] },
    });
  }
  return new Date(ms).toISOString();
}

/** The tenant-scoped, append-only audit log. */
export interface AuditLog {
  /** Appends an event, inside the caller's transaction when given one. */
  record(db: Kysely<Database> | Transaction<Database>, event: AuditRecord): Promise<void>;
  /**
   * Appends events in the order given, as `record` would one by one, in inserts of up to 500 rows;
   * checks every event before writing any. None writes nothing.
   */
  recordMany(db: Kysely<Database> | Transaction<Database>, events: readonly AuditRecord[]): Promise<void>;
  /**
   * Appends an event that belongs to no transaction (a proxied call, a token handed out), committed
   * together with the other events appended meanwhile: one insert and one commit for a batch
   * (group commit). Resolves once the event is committed, so a caller that waits for it answers
   * only what is on record; rejects when the batch could not be written.
   */
  append(event: AuditRecord): Promise<void>;
  /** Events newest first, `limit` at a time; `next` is the cursor of the following page. */
  list(tenantId: string, options?: AuditListOptions): Promise<{ items: AuditEvent[]; next?: string }>;
}

/** Events one insert writes at most (7 bound parameters each: well under SQLite's bound). */
const BATCH_ROWS = 500;
/** Random bytes drawn at once for ids (6 per id). */
const RANDOM_POOL_BYTES = 6 * 512;

const SECRET_KEYS = new Set<string>([...SECRET_FIELDS, 'passwordHash', 'password_hash', 'hash']);

/** Drops every field named like a secret, at any depth: the audit log never holds one. */
function scrub(value: unknown, depth = 0): unknown {
  if (depth > 8 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (!SECRET_KEYS.has(k)) out[k] = scrub(v, depth + 1);
  return out;
}

function encodeCursor(at: string, id: string): string {
  return Buffer.from(JSON.stringify([at, id])).toString('base64url');
}

function decodeCursor(cursor: string): [string, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 2 && parsed.every((p) => typeof p === 'string')) {
      return parsed as [string, string];
    }
  } catch {
    // fall through
  }
  throw new LatchkeyError('invalid_request', 'The audit log cursor is not valid.');
}

export interface AuditLogOptions {
  db: Kysely<Database>;
  /**
   * How a group commit's batch is written (the database handle's `appendRows`: on SQLite a writer
   * thread, so the commit does not stop the event loop); default one insert through `db`.
   */
  appendRows?: DatabaseHandle['appendRows'];
  clock?: Clock;
}

/**
 * @example
 * const audit = createAuditLog({ db });
 * await audit.record(trx, { tenantId, actor, action: 'user.created', target: user.id });
 * await audit.recordMany(trx, ids.map((id) => ({ tenantId, actor, action: 'api_key.revoked', target: id })));
 * const { items, next } = await audit.list(tenantId, { limit: 20 });
 */
export function createAuditLog(options: AuditLogOptions): AuditLog {
  const clock = options.clock ?? systemClock;
  let sequence = 0;
  // The random part of ids, drawn from the CSPRNG a pool at a time (one call per id was a
  // measurable share of a proxied call's CPU); each byte is used once.
  let pool = Buffer.alloc(0);
  let poolAt = 0;
  const randomHex = (bytes: number): string => {
    if (poolAt + bytes > pool.length) {
      pool = randomBytes(RANDOM_POOL_BYTES);
      poolAt = 0;
    }
    poolAt += bytes;
    return pool.toString('hex', poolAt - bytes, poolAt);
  };
  // Ids sort by time, then by a per-process sequence: events recorded in the same millisecond
  // still list in the order they were recorded. Hex only, so every collation orders them alike.
  const nextId = (ms: number): string => {
    sequence = (sequence + 1) % 0x1000000;
    const time = Math.max(0, ms).toString(16).padStart(12, '0');
    return `aud_${time}${sequence.toString(16).padStart(6, '0')}${randomHex(6)}`;
  };

  type Row = Insertable<Database['audit_events']>;
  const toRow = (event: AuditRecord): Row => {
    assertId(event.tenantId, 'tenantId');
    if (typeof event.action !== 'string' || !/^[a-z_]+(\.[a-z_]+)+$/.test(event.action)) {
      throw new TypeError('"action" must look like "resource.verb".');
    }
    const now = clock.now();
    return {
      id: nextId(now.getTime()),
      tenant_id: event.tenantId,
      at: now.toISOString(),
      actor: actorLabel(event.actor),
      action: event.action,
      target: event.target ?? null,
      details: event.details === undefined ? null : JSON.stringify(scrub(event.details)),
    };
  };

  const recordMany: AuditLog['recordMany'] = async (db, events) => {
    const rows = events.map(toRow);
    for (let start = 0; start < rows.length; start += BATCH_ROWS) {
      await db.insertInto('audit_events').values(rows.slice(start, start + BATCH_ROWS)).execute();
    }
  };

  // Group commit: events appended while a batch is being written wait for the next one.
  let queue: Array<{ row: Row; resolve: () => void; reject: (err: unknown) => void }> = [];
  let writing: Promise<void> | undefined;
  const writeQueued = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.slice(0, BATCH_ROWS);
      queue = queue.slice(batch.length);
      try {
        const rows = batch.map((b) => b.row);
        await (options.appendRows ? options.appendRows('audit_events', rows) : options.db.insertInto('audit_events').values(rows).execute());
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
  };

  // Waits for the events of this turn of the event loop, then writes them all at once; one writer at a time.
  const schedule = (): void => {
    if (writing !== undefined) return;
    writing = new Promise<void>((started) => setImmediate(started))
      .then(writeQueued)
      .finally(() => {
        writing = undefined;
        if (queue.length > 0) schedule();
      });
  };

  return {
    record: (db, event) => recordMany(db, [event]),
    recordMany,
    append(event) {
      let row: Row;
      try {
        row = toRow(event);
      } catch (err) {
        return Promise.reject(err);
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ row, resolve, reject });
        schedule();
      });
    },
    async list(tenantId, listOptions = {}) {
      assertId(tenantId, 'tenantId');
      const limit = listOptions.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
        throw new LatchkeyError('validation_failed', 'The audit log "limit" must be an integer from 1 to 500.', {
          details: { fields: [{ path: 'limit', message: 'must be an integer from 1 to 500' }] },
        });
      }
      let query = options.db.selectFrom('audit_events').selectAll().where('tenant_id', '=', tenantId);
      if (listOptions.action !== undefined) query = query.where('action', '=', listOptions.action);
      if (listOptions.target !== undefined) query = query.where('target', '=', listOptions.target);
      if (listOptions.actor !== undefined) query = query.where('actor', '=', listOptions.actor);
      const since = listOptions.since === undefined ? undefined : timeBound(listOptions.since, 'since');
      const until = listOptions.until === undefined ? undefined : timeBound(listOptions.until, 'until');
      if (since !== undefined && until !== undefined && since >= until) {
        throw new LatchkeyError('validation_failed', 'The audit log "until" must be later than "since".', {
          details: { fields: [{ path: 'until', message: 'must be later than "since"' }] },
        });
      }
      if (since !== undefined) query = query.where('at', '>=', since);
      if (until !== undefined) query = query.where('at', '<', until);
      if (listOptions.before !== undefined) {
        const [at, id] = decodeCursor(listOptions.before);
        query = query.where((eb) => eb.or([eb('at', '<', at), eb.and([eb('at', '=', at), eb('id', '<', id)])]));
      }
      const rows = await query.orderBy('at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
      const page = rows.slice(0, limit);
      const items = page.map((row) => ({
        id: row.id,
        tenantId: row.tenant_id,
        at: row.at,
        actor: row.actor,
        action: row.action,
        target: row.target,
        details: row.details === null ? null : (JSON.parse(row.details) as Record<string, unknown>),
      }));
      const last = page[page.length - 1];
      return rows.length > limit && last ? { items, next: encodeCursor(last.at, last.id) } : { items };
    },
  };
}
