// An assembled Latchkey (createLatchkey, real database, real crypto) driven through app.inject,
// for the end-to-end HTTP tests. Every answer and every log line is kept for the leak test.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { createLogger, loadSettings, manualClock, type Clock } from '../../src/core/index.js';
import type { DialectName } from '../../src/db/index.js';
import { SYSTEM_ACTOR } from '../../src/identity/index.js';
import { createLatchkey, type Latchkey, type LatchkeyOptions } from '../../src/latchkey.js';
import { createTestDatabase, latchkeyEnv, LOOPBACK_EGRESS, type TestDatabase } from './databases.js';

export type ManualClock = Clock & { advance(ms: number): void };

export interface CallOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  /** Sent as `Authorization: ApiKey <key>`. */
  key?: string;
  /** A `latchkey_session=…` pair (and the `latchkey_csrf=…` pair `login` adds). */
  cookie?: string;
  /**
   * Whether to send the cookie's CSRF token in `X-Latchkey-CSRF`, as the console does (default
   * true: taken from the `latchkey_csrf` pair of `cookie`, when it has one).
   */
  csrf?: boolean;
  /** JSON body. */
  body?: unknown;
  /** A raw body, sent as application/json. */
  raw?: string;
  headers?: Record<string, string>;
  /** The client address; a random one by default, so per-address limits never cross tests. */
  address?: string;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  text: string;
  // Tests read fields of many shapes.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface TenantFixture {
  id: string;
  name: string;
  adminId: string;
  /** A key of the tenant's admin (all permissions). */
  adminKey: string;
  /** Creates a user through the API (as the tenant admin); returns its id. */
  user(roles?: string[], extra?: { password?: string }): Promise<{ id: string; username: string }>;
  /** Mints a key through the API (as the tenant admin) for `ownerId`; returns it whole with its id. */
  key(ownerId: string, body?: Record<string, unknown>): Promise<{ key: string; id: string }>;
}

export interface HttpHarness {
  dialect: DialectName;
  tdb: TestDatabase;
  latchkey: Latchkey;
  app: FastifyInstance;
  clock: ManualClock;
  /** The bootstrap admin's password (tenant "default", user "admin"). */
  adminPassword: string;
  /** Everything the logger wrote. */
  logs(): string;
  /** Every answer given so far. */
  answers: Answer[];
  call(options: CallOptions): Promise<Answer>;
  /** Logs in; returns the `latchkey_session=…; latchkey_csrf=…` pairs. */
  login(tenant: string, username: string, password: string): Promise<string>;
  tenant(): Promise<TenantFixture>;
  close(): Promise<void>;
}

export const randomName = (prefix: string): string => `${prefix}-${randomBytes(5).toString('hex')}`;
export const randomPassword = (): string => `pw-${randomBytes(18).toString('base64url')}`;
export const randomAddress = (): string => `10.${randomBytes(3).join('.')}`;

function memory(): { destination: Writable; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { destination, text: () => chunks.join('') };
}

/** The first `name=value` pair of a Set-Cookie header. */
export function cookiePair(setCookie: Answer['headers'][string]): string {
  const header = Array.isArray(setCookie) ? setCookie[0] : setCookie;
  assert.equal(typeof header, 'string', 'a Set-Cookie header');
  return String(header).split(';')[0] ?? '';
}

/** Every `name=value` pair of the Set-Cookie headers, as a Cookie header. */
export function cookiePairs(setCookie: Answer['headers'][string]): string {
  const headers = Array.isArray(setCookie) ? setCookie : [setCookie];
  return headers.map((header) => String(header).split(';')[0] ?? '').join('; ');
}

/** The value of the `latchkey_csrf` pair of a Cookie header, if any. */
export function csrfOf(cookie: string): string | undefined {
  return /(?:^|;\s*)latchkey_csrf=([^;]*)/.exec(cookie)?.[1];
}

/**
 * `extra`: createLatchkey options beyond settings (OAuth, webhook and task engine knobs).
 * `harness.proactiveRefresh: false` disables Latchkey's `latchkey:token-refresh` task, for tests
 * that count every refresh a provider sees while the manual clock jumps past tokens' refresh points.
 */
export async function createHttpHarness(
  dialect: DialectName,
  env: Record<string, string> = {},
  extra: Pick<LatchkeyOptions, 'oauth' | 'webhooks' | 'tasks'> = {},
  harness: { proactiveRefresh?: boolean } = {},
): Promise<HttpHarness> {
  const tdb = await createTestDatabase(dialect);
  const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_LOG_LEVEL: 'debug', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS, ...env }) });
  const { destination, text } = memory();
  const clock = manualClock();
  let adminPassword = '';
  let latchkey: Latchkey;
  try {
    latchkey = await createLatchkey({
      settings,
      ...extra,
      background: true,
      clock,
      logger: createLogger({ level: 'debug', destination }),
      onBootstrap: (first) => {
        adminPassword = first.password;
      },
    });
  } catch (err) {
    await tdb.dispose();
    throw err;
  }
  if (harness.proactiveRefresh === false) {
    for (const task of (await latchkey.tasks.list({ type: 'latchkey.token-refresh' })).tasks) await latchkey.tasks.setEnabled(task.id, false);
  }
  const app = latchkey.app as FastifyInstance;
  await app.ready();
  assert.ok(adminPassword.length >= 20, 'bootstrap created the admin');
  const answers: Answer[] = [];

  const call = async (options: CallOptions): Promise<Answer> => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.key !== undefined) headers.authorization = `ApiKey ${options.key}`;
    if (options.cookie !== undefined) {
      headers.cookie = options.cookie;
      const csrf = csrfOf(options.cookie);
      if (options.csrf !== false && csrf !== undefined) headers['x-latchkey-csrf'] ??= csrf;
    }
    let payload: string | undefined;
    if (options.raw !== undefined) payload = options.raw;
    else if (options.body !== undefined) payload = JSON.stringify(options.body);
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    const res = await app.inject({
      method: options.method,
      url: options.url,
      headers,
      remoteAddress: options.address ?? randomAddress(),
      ...(payload !== undefined ? { payload } : {}),
    });
    let json: unknown;
    try {
      json = res.body === '' ? undefined : JSON.parse(res.body);
    } catch {
      json = undefined;
    }
    const answer: Answer = { status: res.statusCode, headers: res.headers, text: res.body, json };
    answers.push(answer);
    return answer;
  };

  const login = async (tenant: string, username: string, password: string): Promise<string> => {
    const res = await call({ method: 'POST', url: '/api/v1/sessions', body: { tenant, username, password } });
    assert.equal(res.status, 201, res.text);
    return cookiePairs(res.headers['set-cookie']);
  };

  const tenant = async (): Promise<TenantFixture> => {
    const { identity, apiKeys } = latchkey;
    const created = await identity.tenants.create({ name: randomName('t') });
    const admin = await identity.users.create(SYSTEM_ACTOR, created.id, { username: 'root', roles: ['admin'] });
    const { key: adminKey } = await apiKeys.service.create(SYSTEM_ACTOR, created.id, admin.id, { name: 'root' });
    return {
      id: created.id,
      name: created.name,
      adminId: admin.id,
      adminKey,
      async user(roles = [], extra = {}) {
        const username = randomName('u');
        const res = await call({ method: 'POST', url: '/api/v1/users', key: adminKey, body: { username, roles, ...extra } });
        assert.equal(res.status, 201, res.text);
        return { id: res.json.id as string, username };
      },
      async key(ownerId, body = {}) {
        const res = await call({ method: 'POST', url: '/api/v1/api-keys', key: adminKey, body: { name: randomName('k'), ownerId, ...body } });
        assert.equal(res.status, 201, res.text);
        return { key: res.json.key as string, id: res.json.apiKey.id as string };
      },
    };
  };

  return {
    dialect,
    tdb,
    latchkey,
    app,
    clock,
    adminPassword,
    logs: text,
    answers,
    call,
    login,
    tenant,
    async close() {
      await latchkey.close();
      await tdb.dispose();
    },
  };
}

/** Asserts the one error body shape and code; returns the message. */
export function assertError(answer: Answer, status: number, code: string): string {
  assert.equal(answer.status, status, answer.text);
  assert.deepEqual(Object.keys(answer.json ?? {}), ['error'], answer.text);
  const error = answer.json.error as Record<string, unknown>;
  assert.equal(error.code, code, answer.text);
  assert.equal(typeof error.message, 'string');
  assert.equal(error.requestId, answer.headers['x-request-id']);
  return error.message as string;
}
