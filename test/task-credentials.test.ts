// Tasks that run as a user, end to end on both databases: the task API key granted with the task
// (no stronger than the caller's key, in the owner's key list), used by the run through Latchkey's
// own API, queued for invalidation in the deletion's transaction (one or many, even when the
// task's secrets no longer decrypt), revoked after the delay so the API refuses it; escalation,
// cross-tenant and tamper attacks; an external issuer (a real HTTP server verifying Standard
// Webhooks signatures): grant and use independent, switching credentialType without rescheduling,
// fallback, an issuer failing during grant leaves an intent that is invalidated, failed
// invalidations retried.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { loadSettings, manualClock } from '../src/core/index.js';
import { createLatchkey, INVALIDATION_TASK, type Latchkey } from '../src/latchkey.js';
import type { TaskLatchkeyClient } from '../src/tasks/index.js';
import type { DialectName } from '../src/db/index.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS, type TestDatabase } from './support/databases.js';
import { assertError, createHttpHarness, randomName, type HttpHarness } from './support/http.js';

const HOUR = 3600_000;
/** The invalidation task runs at start and then only when a test runs it (the clock moves by hours). */
const QUIET_INVALIDATION = { LATCHKEY_INVALIDATION_INTERVAL: '24h' };

interface Seen {
  taskId: string;
  credential: { kind: string; id: string; secret?: string } | null;
  me: { status: number; body: Record<string, unknown> };
  createKey?: number;
}

/** Registers `test.whoami`: calls /me (and, when asked, tries to mint a key) with the run's client; records what it saw. */
function registerWhoami(latchkey: Latchkey, seen: Seen[]): void {
  latchkey.tasks.register({
    type: 'test.whoami',
    paramsSchema: z.object({ tryCreateKey: z.boolean().optional() }),
    needsSecret: true,
    maxAttempts: 1,
    run: async ({ taskId, credential, latchkey: client, params }) => {
      const api = client as TaskLatchkeyClient;
      const me = await api.fetch('/api/v1/me');
      const entry: Seen = { taskId, credential, me: { status: me.status, body: (await me.json()) as Record<string, unknown> } };
      if (params.tryCreateKey) {
        const res = await api.fetch('/api/v1/api-keys', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'escalate' }) });
        entry.createKey = res.status;
      }
      seen.push(entry);
      return { status: me.status };
    },
  });
  // Names only: no secret asked for.
  latchkey.tasks.register({ type: 'test.quiet', paramsSchema: z.object({}), maxAttempts: 1, run: ({ credential }) => void seen.push({ taskId: 'quiet', credential, me: { status: 0, body: {} } }) });
}

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}.`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function queued(latchkey: Latchkey) {
  return latchkey.database.db.selectFrom('credentials_to_invalidate').selectAll().orderBy('credential_id').execute();
}

/** Waits for the invalidation task's run at start to end (the clock must not jump under a running attempt's lease). */
async function invalidationSettled(latchkey: Latchkey): Promise<void> {
  await until('the invalidation task to settle', async () => {
    const [task] = (await latchkey.tasks.list({ type: INVALIDATION_TASK })).tasks;
    return task !== undefined && task.lastRunAt !== null && task.status !== 'running';
  });
}

/** Runs the recurring invalidation task now (the clock moved past the delay) and waits for it. */
async function invalidateNow(latchkey: Latchkey): Promise<Record<string, number>> {
  const { tasks } = await latchkey.tasks.list({ type: INVALIDATION_TASK });
  const task = tasks[0];
  assert.ok(task, 'the invalidation task exists');
  // Its first run starts with the background work: let it end first.
  const before = await until('the first invalidation run to end', async () => {
    const view = await latchkey.tasks.get(task.id);
    return view.runs.length > 0 && view.status !== 'running' ? view.runs.length : undefined;
  });
  // It may be running on its own schedule (its first run starts with the background work): then run it again after.
  await until('the invalidation task to start again', async () => {
    try {
      await latchkey.tasks.runNow(task.id);
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === 'conflict') return false;
      throw err;
    }
  });
  const done = await until('the invalidation run', async () => {
    const view = await latchkey.tasks.get(task.id);
    return view.runs.length > before && view.status !== 'running' ? view : undefined;
  });
  assert.equal(done.runs[0]?.outcome, 'succeeded', JSON.stringify(done.runs[0]));
  return done.lastResult as Record<string, number>;
}

async function setup(h: HttpHarness, seen: Seen[]) {
  registerWhoami(h.latchkey, seen);
  const tenant = await h.tenant();
  const user = await tenant.user(['editor']);
  const userKey = await tenant.key(user.id);
  return { tenant, user, userKey };
}

await eachDialect('tasks that run as a user', (dialect) => {
  it('grants a task API key with the task, runs with it through the API, queues it at removal and revokes it after the delay', async (t) => {
    const h = await createHttpHarness(dialect, QUIET_INVALIDATION, { tasks: { pollIntervalMs: 20 } });
    t.after(() => h.close());
    const seen: Seen[] = [];
    const { tenant, user, userKey } = await setup(h, seen);

    const created = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.whoami', runAs: 'caller' } });
    assert.equal(created.status, 201, created.text);
    const task = created.json;
    assert.deepEqual(task.runAs, { kind: 'user', userId: user.id });
    assert.equal(task.owner.userId, user.id);
    assert.equal(task.credentials.length, 1);
    const taskKeyId = task.credentials[0].id as string;
    assert.equal(task.credentials[0].kind, 'native');

    // The key is in the owner's list, marked as the task's; neither list nor task holds a secret.
    const keys = await h.call({ method: 'GET', url: '/api/v1/api-keys', key: userKey.key });
    const listed = keys.json.items.find((k: { id: string }) => k.id === taskKeyId);
    assert.equal(listed?.kind, 'task');
    assert.equal(listed?.taskId, task.id);
    assert.equal(listed?.ownerId, user.id);

    const run = await until('the run', () => seen.find((s) => s.taskId === task.id));
    assert.equal(run.me.status, 200, JSON.stringify(run.me));
    assert.equal((run.me.body['apiKey'] as { id: string }).id, taskKeyId, 'the run called with its own key');
    assert.equal(run.credential?.kind, 'native');
    const secret = run.credential?.secret as string;
    assert.match(secret, /^lk_/);
    const view = await until('the run to be recorded', async () => {
      const answer = await h.call({ method: 'GET', url: `/api/v1/tasks/${task.id}`, key: userKey.key });
      return answer.status === 200 && answer.json.runs.length > 0 ? answer : undefined;
    });
    assert.equal(view.json.runs[0].outcome, 'succeeded');
    assert.deepEqual(view.json.lastResult, { status: 200 }, JSON.stringify(view.json));
    for (const answer of h.answers) assert.ok(!answer.text.includes(secret), 'no answer holds the task key');
    assert.ok(!h.logs().includes(secret), 'no log line holds the task key');
    const rows = JSON.stringify(await h.latchkey.database.db.selectFrom('tasks').selectAll().execute());
    assert.ok(!rows.includes(secret.slice(-20)), 'the task row holds no secret');

    // Removal queues the key in the same transaction; it keeps working until the delay has passed.
    const removed = await h.call({ method: 'DELETE', url: `/api/v1/tasks/${task.id}`, key: userKey.key });
    assert.equal(removed.status, 204, removed.text);
    assert.deepEqual((await queued(h.latchkey)).map((q) => [q.kind, q.credential_id, q.reason]), [['native', taskKeyId, 'task_removed']]);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/me', key: secret })).status, 200);
    assert.deepEqual(await invalidateNow(h.latchkey), { invalidated: 0, failed: 0, stillReferenced: 0 }, 'nothing is invalidated before the delay');

    await invalidationSettled(h.latchkey);

    h.clock.advance(HOUR + 1000);
    const report = await invalidateNow(h.latchkey);
    assert.equal(report.invalidated, 1);
    assert.deepEqual(await queued(h.latchkey), []);
    assertError(await h.call({ method: 'GET', url: '/api/v1/me', key: secret }), 401, 'unauthorized');
    const revoked = await h.call({ method: 'GET', url: `/api/v1/api-keys/${taskKeyId}`, key: tenant.adminKey });
    assert.ok(revoked.json.revokedAt, 'the key is revoked');
    const metrics = await h.latchkey.metrics.registry.metrics();
    assert.match(metrics, /latchkey_task_credentials_invalidated_total\{kind="native"\} 1/);
    assert.match(metrics, /latchkey_task_credentials_queued 0/);
  });

  it('never grants a task more than the key that schedules it, and refuses acting for end users without connectors:use', async (t) => {
    const h = await createHttpHarness(dialect, QUIET_INVALIDATION, { tasks: { pollIntervalMs: 20 } });
    t.after(() => h.close());
    const seen: Seen[] = [];
    const { tenant, user } = await setup(h, seen);
    const role = await h.call({ method: 'POST', url: '/api/v1/roles', key: tenant.adminKey, body: { name: 'tasker', permissions: ['tasks:read', 'tasks:write'] } });
    assert.equal(role.status, 201, role.text);
    const narrow = await tenant.key(user.id, { roles: ['tasker'] });

    const created = await h.call({ method: 'POST', url: '/api/v1/tasks', key: narrow.key, body: { type: 'test.whoami', params: { tryCreateKey: true }, runAs: 'caller' } });
    assert.equal(created.status, 201, created.text);
    const run = await until('the run', () => seen.find((s) => s.taskId === created.json.id));
    assert.deepEqual(run.me.body['permissions'], ['tasks:read', 'tasks:write'], 'the task holds the calling key\'s permissions, not its owner\'s');
    assert.equal(run.createKey, 403, 'the task cannot mint keys its scheduler could not');

    const endUser = await h.call({ method: 'POST', url: '/api/v1/tasks', key: narrow.key, body: { type: 'test.whoami', runAs: { endUserId: 'customer-1' } } });
    assertError(endUser, 403, 'insufficient_permissions');
    const viewer = await tenant.user(['viewer']);
    const viewerKey = await tenant.key(viewer.id);
    assertError(await h.call({ method: 'POST', url: '/api/v1/tasks', key: viewerKey.key, body: { type: 'test.whoami', runAs: 'caller' } }), 403, 'forbidden');
    // Latchkey's own maintenance types are not a tenant's to schedule.
    assertError(await h.call({ method: 'POST', url: '/api/v1/tasks', key: tenant.adminKey, body: { type: INVALIDATION_TASK } }), 400, 'validation_failed');
    const taskKeys = await h.latchkey.database.db.selectFrom('api_keys').select('id').where('kind', '=', 'task').execute();
    assert.equal(taskKeys.length, 1, 'refused schedules granted nothing');

    // A task loses what its owner loses: a disabled owner's task key is refused.
    const disabled = await h.call({ method: 'PATCH', url: `/api/v1/users/${user.id}`, key: tenant.adminKey, body: { disabled: true } });
    assert.equal(disabled.status, 200, disabled.text);
    const again = await h.call({ method: 'POST', url: `/api/v1/tasks/${created.json.id}/_run`, key: tenant.adminKey });
    assert.equal(again.status, 200, again.text);
    const second = await until('the second run', () => seen.filter((s) => s.taskId === created.json.id)[1]);
    assert.equal(second.me.status, 401);
  });

  it('answers another tenant\'s tasks like unknown ones, through every route, and queues nothing of theirs', async (t) => {
    const h = await createHttpHarness(dialect, QUIET_INVALIDATION, { tasks: { pollIntervalMs: 20 } });
    t.after(() => h.close());
    const seen: Seen[] = [];
    const { userKey } = await setup(h, seen);
    const other = await h.tenant();
    const created = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.quiet', runAs: 'caller', schedule: { every: '1h' }, enabled: false } });
    assert.equal(created.status, 201, created.text);
    const id = created.json.id as string;
    for (const [method, url] of [
      ['GET', `/api/v1/tasks/${id}`],
      ['POST', `/api/v1/tasks/${id}/_run`],
      ['POST', `/api/v1/tasks/${id}/_enable`],
      ['POST', `/api/v1/tasks/${id}/_disable`],
      ['DELETE', `/api/v1/tasks/${id}`],
    ] as const) {
      assertError(await h.call({ method, url, key: other.adminKey }), 404, 'not_found');
    }
    const bulk = await h.call({ method: 'POST', url: '/api/v1/tasks/_bulk_delete', key: other.adminKey, body: { ids: [id] } });
    assert.deepEqual(bulk.json, { removed: [], notFound: [id] });
    assert.deepEqual((await h.call({ method: 'GET', url: '/api/v1/tasks', key: other.adminKey })).json.items, []);
    assert.deepEqual(await queued(h.latchkey), []);
    assert.equal((await h.call({ method: 'GET', url: `/api/v1/tasks/${id}`, key: userKey.key })).json.enabled, false);
    // Bad input changes nothing.
    assertError(await h.call({ method: 'POST', url: '/api/v1/tasks/_bulk_delete', key: userKey.key, body: { ids: [] } }), 400, 'validation_failed');
    assertError(await h.call({ method: 'GET', url: `/api/v1/tasks/${'x'.repeat(300)}`, key: userKey.key }), 414, 'invalid_request');
    assertError(await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.quiet\u0000', runAs: 'caller' } }), 400, 'validation_failed');
    assertError(await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.quiet', runAs: { endUserId: 'a\u0000b' } } }), 400, 'validation_failed');
    assertError(await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.quiet', params: { x: 'y'.repeat(70_000) } } }), 413, 'payload_too_large');
    assert.equal((await h.latchkey.database.db.selectFrom('tasks').select('id').where('tenant_id', 'is not', null).execute()).length, 1);
  });

  it('queues every credential of a bulk delete, even a task whose secrets and params no longer read; a tampered runAs fails the run without calling anything', async (t) => {
    const h = await createHttpHarness(dialect, QUIET_INVALIDATION, { tasks: { pollIntervalMs: 20 } });
    t.after(() => h.close());
    const seen: Seen[] = [];
    const { userKey } = await setup(h, seen);
    const ids: string[] = [];
    const keyIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.whoami', runAs: { endUserId: `customer-${i}` }, schedule: { every: '1h' }, enabled: false } });
      assert.equal(res.status, 201, res.text);
      ids.push(res.json.id);
      keyIds.push(res.json.credentials[0].id);
    }
    const db = h.latchkey.database.db;
    // Task 0: its secrets no longer decrypt and its params are not JSON.
    const object = await db.selectFrom('objects').selectAll().where('id', '=', ids[0] as string).executeTakeFirstOrThrow();
    const damaged = Object.fromEntries(Object.entries(object).filter(([name, value]) => typeof value === 'string' && /cipher|secret|encrypted/i.test(name) && value.length > 20).map(([name, value]) => [name, `${(value as string).slice(0, -8)}AAAAAAAA`]));
    assert.ok(Object.keys(damaged).length > 0, 'the object has a ciphertext column');
    await db.updateTable('objects').set(damaged).where('id', '=', ids[0] as string).execute();
    await db.updateTable('tasks').set({ params: '{not json' }).where('id', '=', ids[0] as string).execute();
    // Task 1: its plain runAs now names another end user than its (authenticated) secrets.
    await db.updateTable('tasks').set({ run_as: JSON.stringify({ kind: 'end_user', endUserId: 'someone-else', userId: 'usr_x' }), params: '{}' }).where('id', '=', ids[1] as string).execute();
    await db.updateTable('tasks').set({ params: '{}' }).where('id', '=', ids[0] as string).execute();
    assert.equal((await h.call({ method: 'POST', url: `/api/v1/tasks/${ids[1]}/_enable`, key: userKey.key })).status, 200);
    await h.call({ method: 'POST', url: `/api/v1/tasks/${ids[1]}/_run`, key: userKey.key });
    const failed = await until('the tampered run', async () => {
      const view = await h.call({ method: 'GET', url: `/api/v1/tasks/${ids[1]}`, key: userKey.key });
      return view.json.runs.length > 0 ? view.json : undefined;
    });
    assert.equal(failed.runs[0].errorCode, 'decryption_failed');
    assert.equal(seen.length, 0, 'the tampered task called nothing');
    await db.updateTable('tasks').set({ params: '{not json' }).where('id', '=', ids[0] as string).execute();

    const bulk = await h.call({ method: 'POST', url: '/api/v1/tasks/_bulk_delete', key: userKey.key, body: { ids: [...ids, 'tsk_unknown'] } });
    assert.equal(bulk.status, 200, bulk.text);
    assert.deepEqual([...bulk.json.removed].sort(), [...ids].sort());
    assert.deepEqual(bulk.json.notFound, ['tsk_unknown']);
    assert.deepEqual((await queued(h.latchkey)).map((q) => q.credential_id).sort(), [...keyIds].sort(), 'every key is queued, the unreadable task\'s too');
    assert.equal((await db.selectFrom('objects').select('id').where('id', 'in', ids).execute()).length, 0, 'the secrets went with the tasks');
    await invalidationSettled(h.latchkey);
    h.clock.advance(HOUR + 1000);
    assert.equal((await invalidateNow(h.latchkey)).invalidated, 3);
    const live = await db.selectFrom('api_keys').select('id').where('id', 'in', keyIds).where('revoked_at', 'is', null).execute();
    assert.deepEqual(live, []);
  });

  it('does not invalidate a credential another task still holds', async (t) => {
    const h = await createHttpHarness(dialect, QUIET_INVALIDATION, { tasks: { pollIntervalMs: 20 } });
    t.after(() => h.close());
    const seen: Seen[] = [];
    const { tenant, userKey } = await setup(h, seen);
    const a = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.quiet', runAs: 'caller', schedule: { every: '1h' }, enabled: false } });
    const b = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'test.quiet', runAs: 'caller', schedule: { every: '1h' }, enabled: false } });
    const shared = a.json.credentials[0].id as string;
    // Task b holds a's key as well (as tasks sharing one grant would).
    await h.latchkey.database.db.insertInto('task_credentials').values({ task_id: b.json.id, tenant_id: tenant.id, kind: 'native', credential_id: shared, created_at: new Date().toISOString() }).execute();
    assert.equal((await h.call({ method: 'DELETE', url: `/api/v1/tasks/${a.json.id}`, key: userKey.key })).status, 204);
    await invalidationSettled(h.latchkey);
    h.clock.advance(HOUR + 1000);
    const report = await invalidateNow(h.latchkey);
    assert.deepEqual(report, { invalidated: 0, failed: 0, stillReferenced: 1 });
    const key = await h.call({ method: 'GET', url: `/api/v1/api-keys/${shared}`, key: tenant.adminKey });
    assert.equal(key.json.revokedAt, null);
  });

  it('runs the built-in connector_request as an end user: through the proxy with that end user\'s credential, its summary kept and audited as the task\'s key', async (t) => {
    const upstream: FastifyInstance = Fastify();
    const got: Array<{ url: string; headers: Record<string, unknown> }> = [];
    upstream.get('/api/*', async (request) => {
      got.push({ url: request.url, headers: request.headers });
      return { login: 'eve', plan: 'pro' };
    });
    await upstream.listen({ host: '127.0.0.1', port: 0 });
    t.after(() => upstream.close());
    const h = await createHttpHarness(dialect, { ...QUIET_INVALIDATION, LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'true' }, { tasks: { pollIntervalMs: 20 } });
    t.after(() => h.close());
    const { tenant, userKey } = await setup(h, []);
    const upstreamUrl = `http://127.0.0.1:${(upstream.server.address() as { port: number }).port}`;
    const connector = await h.call({ method: 'POST', url: '/api/v1/connectors', key: tenant.adminKey, body: { name: 'Keyed', provider: 'http', authType: 'api_key', tokenMode: 'per_user', config: { apiBaseUrl: `${upstreamUrl}/api`, name: 'X-Api-Key' } } });
    assert.equal(connector.status, 201, connector.text);
    const eveKey = `eve-${randomBytes(16).toString('hex')}`;
    const saved = await h.call({ method: 'PUT', url: `/api/v1/connectors/${connector.json.id}/connection`, key: userKey.key, body: { credential: { key: eveKey } }, headers: { 'latchkey-end-user': 'eve' } });
    assert.equal(saved.status, 200, saved.text);

    // Without runAs it could never run: refused when scheduled, nothing stored.
    const before = (await h.call({ method: 'GET', url: '/api/v1/tasks', key: userKey.key })).json.items.length;
    const unowned = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'connector_request', params: { connectorId: connector.json.id, path: '/user' } } });
    assert.equal(unowned.status, 400, unowned.text);
    assert.equal(unowned.json.error.code, 'validation_failed');
    assert.equal(unowned.json.error.message, 'The task is invalid: a connector_request task runs as a user, so schedule it with "runAs".');
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/tasks', key: userKey.key })).json.items.length, before);
    const missing = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'connector_request', params: { path: '/user' }, runAs: 'caller' } });
    assert.equal(missing.json.error?.message, 'The task is invalid: "params.connectorId" is required.', missing.text);

    const created = await h.call({
      method: 'POST',
      url: '/api/v1/tasks',
      key: userKey.key,
      body: { type: 'connector_request', params: { connectorId: connector.json.id, path: '/user', query: { fields: 'login' } }, runAs: { endUserId: 'eve' } },
    });
    assert.equal(created.status, 201, created.text);
    const done = await until('the request to be made', async () => {
      const view = await h.call({ method: 'GET', url: `/api/v1/tasks/${created.json.id}`, key: userKey.key });
      return view.json.status === 'succeeded' ? view.json : undefined;
    });
    assert.equal(done.lastResult.status, 200);
    assert.equal(done.lastResult.bytes, JSON.stringify({ login: 'eve', plan: 'pro' }).length);
    assert.match(done.lastResult.contentType, /application\/json/);
    assert.equal(got.length, 1);
    assert.equal(got[0]?.url, '/api/user?fields=login');
    assert.equal(got[0]?.headers['x-api-key'], eveKey, "the end user's own credential was injected");
    assert.equal(got[0]?.headers['idempotency-key'], `${created.json.id}@${done.runs[0].slot}`);
    assert.equal(got[0]?.headers['authorization'], undefined, "the task's Latchkey key never reaches the provider");
    assert.equal(got[0]?.headers['user-agent'], 'latchkey-task', 'the provider sees a Latchkey task calling');
    const taskKey = created.json.credentials[0].id as string;
    const audit = await h.call({ method: 'GET', url: `/api/v1/audit?actor=${encodeURIComponent(`api_key:${taskKey}`)}`, key: tenant.adminKey });
    assert.equal(audit.status, 200, audit.text);
    assert.ok(audit.json.items.length > 0, 'the proxied call is audited as the task key');
    assert.ok(!JSON.stringify(done).includes(eveKey));

    // A connector that does not exist, or is another tenant's, is refused when scheduled, alike; nothing is stored.
    const other = await h.tenant();
    const theirs = await h.call({ method: 'POST', url: '/api/v1/connectors', key: other.adminKey, body: { name: 'Theirs', provider: 'http', authType: 'bearer', config: { apiBaseUrl: `${upstreamUrl}/api` }, secrets: { token: `t-${randomBytes(12).toString('hex')}` } } });
    assert.equal(theirs.status, 201, theirs.text);
    const count = async () => (await h.call({ method: 'GET', url: '/api/v1/tasks', key: userKey.key })).json.items.length as number;
    const stored = await count();
    for (const connectorId of ['connector_unknown', theirs.json.id as string]) {
      const refusedNow = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'connector_request', params: { connectorId, path: '/user' }, runAs: 'caller' } });
      assert.equal(assertError(refusedNow, 400, 'validation_failed'), 'The task is invalid: "params.connectorId" is not a connector of this tenant.');
      assert.deepEqual(refusedNow.json.error.details.fields, [{ path: 'params.connectorId', message: 'is not a connector of this tenant' }]);
    }
    assert.equal(await count(), stored);

    // A connector deleted after the task was scheduled: Latchkey's own refusal is told as such, not as the provider's answer.
    const doomed = await h.call({ method: 'POST', url: '/api/v1/connectors', key: tenant.adminKey, body: { name: 'Doomed', provider: 'http', authType: 'bearer', config: { apiBaseUrl: `${upstreamUrl}/api` }, secrets: { token: `t-${randomBytes(12).toString('hex')}` } } });
    assert.equal(doomed.status, 201, doomed.text);
    const orphan = await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'connector_request', params: { connectorId: doomed.json.id, path: '/user' }, runAs: 'caller', enabled: false } });
    assert.equal(orphan.status, 201, orphan.text);
    assert.equal((await h.call({ method: 'DELETE', url: `/api/v1/connectors/${doomed.json.id}`, key: tenant.adminKey })).status, 204);
    assert.equal((await h.call({ method: 'POST', url: `/api/v1/tasks/${orphan.json.id}/_enable`, key: userKey.key })).status, 200);
    const refused = await until('the deleted connector to fail', async () => {
      const view = await h.call({ method: 'GET', url: `/api/v1/tasks/${orphan.json.id}`, key: userKey.key });
      return view.json.runs.length > 0 ? view.json : undefined;
    });
    assert.equal(refused.runs[0].errorCode, 'not_found');
    assert.equal(refused.runs[0].error, `Latchkey refused the call (No connector with id "${doomed.json.id as string}" exists).`);
    assertError(await h.call({ method: 'POST', url: '/api/v1/tasks', key: userKey.key, body: { type: 'connector_request', params: { connectorId: connector.json.id, path: '/../../api/v1/api-keys' }, runAs: 'caller' } }), 400, 'validation_failed');
  });

  describe('with an external credential issuer', () => issuerTests(dialect));
});

interface Issuer {
  url: string;
  secret: string;
  grants: Array<{ reference: string; secret: string }>;
  invalidated: string[];
  failGrant: boolean;
  failInvalidate: boolean;
  close(): Promise<void>;
}

/** A small external issuer on 127.0.0.1: verifies every request's Standard Webhooks signature, grants random secrets. */
async function startIssuer(): Promise<Issuer> {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  const verifier = new Webhook(secret);
  const app: FastifyInstance = Fastify();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  const issuer: Issuer = { url: '', secret, grants: [], invalidated: [], failGrant: false, failInvalidate: false, close: () => app.close() };
  const verify = (request: { body: unknown; headers: Record<string, unknown> }) => verifier.verify(request.body as string, request.headers as Record<string, string>) as Record<string, string>;
  app.post('/grant', async (request, reply) => {
    const body = verify(request);
    if (issuer.failGrant) return reply.code(500).send({ error: 'issuer down' });
    const granted = { reference: body['reference'] as string, secret: `ext_${randomBytes(16).toString('hex')}` };
    issuer.grants.push(granted);
    return { secret: granted.secret, expiresAt: null };
  });
  app.post('/invalidate', async (request, reply) => {
    const body = verify(request);
    if (issuer.failInvalidate) return reply.code(503).send('later');
    issuer.invalidated.push(body['reference'] as string);
    return reply.code(204).send();
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  issuer.url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  return issuer;
}

async function startInstance(tdb: TestDatabase, env: Record<string, string>, seen: Seen[], clock = manualClock()): Promise<{ latchkey: Latchkey; clock: typeof clock }> {
  const settings = loadSettings({ env: { ...env, LATCHKEY_LOG_LEVEL: 'silent' } });
  const latchkey = await createLatchkey({ settings, clock, background: true, bootstrap: false, tasks: { pollIntervalMs: 20 } });
  registerWhoami(latchkey, seen);
  return { latchkey, clock };
}

function issuerTests(dialect: DialectName): void {
  it('grants both kinds, uses the configured one, switches without rescheduling, falls back for older tasks, and invalidates both', async (t) => {
    const issuer = await startIssuer();
    const tdb = await createTestDatabase(dialect);
    const base = latchkeyEnv(tdb, { ...QUIET_INVALIDATION, LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS, LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'true' });
    const withIssuer = { ...base, LATCHKEY_TASK_CREDENTIAL_ISSUER_URL: issuer.url, LATCHKEY_TASK_CREDENTIAL_ISSUER_SECRET: issuer.secret };
    const seen: Seen[] = [];
    const open: Latchkey[] = [];
    t.after(async () => {
      for (const latchkey of open) await latchkey.close();
      await tdb.dispose();
      await issuer.close();
    });
    const instance = async (env: Record<string, string>) => {
      const made = await startInstance(tdb, env, seen);
      open.push(made.latchkey);
      return made;
    };

    // 1. No issuer yet: a task holds only its native key.
    const first = await instance(base);
    const { identity, apiKeys } = first.latchkey;
    const tenant = await identity.tenants.create({ name: randomName('t') });
    const { SYSTEM_ACTOR } = await import('../src/identity/index.js');
    const user = await identity.users.create(SYSTEM_ACTOR, tenant.id, { username: 'worker', roles: ['editor'] });
    const actor = { type: 'user' as const, tenantId: tenant.id, userId: user.id };
    const old = await first.latchkey.tasks.schedule({ type: 'test.whoami', runAs: 'caller', actor, schedule: { every: '1h' }, enabled: false });
    assert.deepEqual(old.credentials.map((c) => c.kind), ['native']);
    await first.latchkey.close();

    // 2. An issuer, credentialType still native: new tasks are granted both, runs use the native key.
    const second = await instance(withIssuer);
    const both = await second.latchkey.tasks.schedule({ type: 'test.whoami', runAs: 'caller', actor, schedule: { every: '1h' } });
    assert.deepEqual(both.credentials.map((c) => c.kind), ['native', 'external']);
    assert.equal(issuer.grants.length, 1);
    const reference = both.credentials[1]?.id as string;
    assert.equal(issuer.grants[0]?.reference, reference);
    const nativeRun = await until('the run with the native key', () => seen.find((s) => s.taskId === both.id));
    assert.equal(nativeRun.credential?.kind, 'native');
    assert.deepEqual(await queued(second.latchkey), [], 'the intent was released with the task write');

    // 3. The issuer fails a grant: nothing is scheduled, the intent stays queued.
    issuer.failGrant = true;
    await assert.rejects(second.latchkey.tasks.schedule({ type: 'test.whoami', runAs: 'caller', actor }), (err: { code?: string }) => err.code === 'issuer_unavailable');
    issuer.failGrant = false;
    const intents = await queued(second.latchkey);
    assert.deepEqual(intents.map((q) => [q.kind, q.reason]), [['external', 'grant_intent']]);
    assert.equal((await second.latchkey.database.db.selectFrom('tasks').select('id').where('tenant_id', '=', tenant.id).execute()).length, 2);
    assert.equal((await second.latchkey.database.db.selectFrom('api_keys').select('id').where('kind', '=', 'task').execute()).length, 2, 'no key for the task that was not written');
    await second.latchkey.close();

    // 4. credentialType external: the same tasks, not rescheduled, now use the external credential; the older one falls back.
    seen.length = 0;
    const third = await instance({ ...withIssuer, LATCHKEY_TASK_CREDENTIAL_TYPE: 'external' });
    await until('the task to be idle', async () => (await third.latchkey.tasks.get(both.id)).status !== 'running');
    await third.latchkey.tasks.runNow(both.id);
    // Enabled, its first slot long past: due at once.
    await third.latchkey.tasks.setEnabled(old.id, true);
    const externalRun = await until('the run with the external credential', () => seen.find((s) => s.taskId === both.id));
    assert.equal(externalRun.credential?.kind, 'external');
    assert.equal(externalRun.credential?.secret, issuer.grants[0]?.secret);
    assert.equal(externalRun.me.status, 200, 'the Latchkey client still authenticates with the task key');
    const fallback = await until('the older task\'s run', () => seen.find((s) => s.taskId === old.id));
    assert.equal(fallback.credential?.kind, 'native');

    // 5. Removal queues both kinds; a failing issuer keeps its entries (retried), then they go.
    await third.latchkey.tasks.removeMany([both.id, old.id]);
    assert.equal((await queued(third.latchkey)).length, 4);
    await invalidationSettled(third.latchkey);
    third.clock.advance(HOUR + 1000);
    issuer.failInvalidate = true;
    const failing = await invalidateNow(third.latchkey);
    assert.deepEqual(failing, { invalidated: 2, failed: 2, stillReferenced: 0 });
    const kept = await queued(third.latchkey);
    assert.deepEqual(kept.map((q) => [q.kind, Number(q.attempts)]), [['external', 1], ['external', 1]]);
    assert.ok(kept.every((q) => q.last_error?.includes('503')), JSON.stringify(kept));
    issuer.failInvalidate = false;
    await invalidationSettled(third.latchkey);
    third.clock.advance(2 * HOUR);
    assert.equal((await invalidateNow(third.latchkey)).invalidated, 2);
    assert.deepEqual(await queued(third.latchkey), []);
    assert.deepEqual([...issuer.invalidated].sort(), [reference, intents[0]?.credential_id].sort(), 'the granted credential and the abandoned intent were invalidated');
    const live = await third.latchkey.database.db.selectFrom('api_keys').select('id').where('kind', '=', 'task').where('revoked_at', 'is', null).execute();
    assert.deepEqual(live, []);
    assert.ok(apiKeys);
    await third.latchkey.close();
  });

  it('refuses credentialType external without an issuer, in one sentence', async () => {
    const tdb = await createTestDatabase(dialect);
    try {
      const settings = loadSettings({ env: latchkeyEnv(tdb, { LATCHKEY_TASK_CREDENTIAL_TYPE: 'external', LATCHKEY_LOG_LEVEL: 'silent' }) });
      await assert.rejects(createLatchkey({ settings, http: false }), /no task credential issuer is configured/);
      assert.throws(() => loadSettings({ env: { LATCHKEY_TASK_CREDENTIAL_ISSUER_URL: 'http://127.0.0.1:1' } }), /needs both/);
      assert.throws(() => loadSettings({ env: { LATCHKEY_INVALIDATION_DELAY: 'soon' } }), /LATCHKEY_INVALIDATION_DELAY must be a duration/);
      const secret = `whsec_${randomBytes(8).toString('base64')}`;
      assert.throws(
        () => loadSettings({ env: { LATCHKEY_TASK_CREDENTIAL_ISSUER_URL: 'http://127.0.0.1:1', LATCHKEY_TASK_CREDENTIAL_ISSUER_SECRET: secret } }),
        (err: Error) => err.message.includes('LATCHKEY_TASK_CREDENTIAL_ISSUER_SECRET') && !err.message.includes(secret),
      );
    } finally {
      await tdb.dispose();
    }
  });
}
