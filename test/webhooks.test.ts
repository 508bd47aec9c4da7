// Webhooks end to end through createLatchkey on both databases: endpoints over HTTP (the secret
// shown once), connection events from a real OAuth flow (oidc-provider on 127.0.0.1) delivered to
// a receiver that verifies every signature with the `standardwebhooks` package, retries with
// backoff, redelivery, a delivery pending at shutdown sent by the next process, and tenancy.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { loadSettings, manualClock } from '../src/core/index.js';
import type { DialectName } from '../src/db/index.js';
import { SYSTEM_ACTOR } from '../src/identity/index.js';
import { createLatchkey } from '../src/latchkey.js';
import { CONNECTION_TYPE, connectionId } from '../src/oauth/index.js';
import { createTestDatabase, eachDialect, latchkeyEnv, LOOPBACK_EGRESS } from './support/databases.js';
import { assertError, createHttpHarness, randomName, type HttpHarness } from './support/http.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';
import { startReceiver, until, verified, type Received, type Receiver } from './support/webhook-receiver.js';

const PUBLIC_URL = 'https://latchkey.test';
const CALLBACK = `${PUBLIC_URL}/api/v1/oauth/callback`;
const ENV = { LATCHKEY_PUBLIC_URL: PUBLIC_URL, LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'true', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS };
// Delivery attempts are engine tasks: polled often, and leased far beyond the manual clock's jumps
// (which would otherwise expire the lease of an attempt under way and run it twice, as after a crash).
const ATTEMPT_TASKS = { pollIntervalMs: 20, leaseMs: 3_600_000 };
const ALL_EVENTS = ['connection.created', 'connection.refresh_failed', 'connection.needs_reauthorization', 'connection.recovered', 'connection.deleted'];

async function createEndpoint(h: HttpHarness, key: string, url: string, events: string[] = ALL_EVENTS) {
  const res = await h.call({ method: 'POST', url: '/api/v1/webhooks', key, body: { url, events, description: 'test' } });
  assert.equal(res.status, 201, res.text);
  assert.match(res.json.secret, /^whsec_[A-Za-z0-9+/]{43}=$/);
  return { id: res.json.endpoint.id as string, secret: res.json.secret as string };
}

await eachDialect('webhooks', (dialect: DialectName) => {
  describe('endpoints, connection events and signatures', () => {
    let h: HttpHarness;
    let op: TestProvider;
    let receiver: Receiver;
    before(async () => {
      op = await startOidcProvider({ redirectUris: [CALLBACK], accessTokenTtl: 60 });
      receiver = await startReceiver();
      h = await createHttpHarness(dialect, ENV, { webhooks: { backoff: { baseMs: 10_000, maxMs: 10_000 } }, tasks: ATTEMPT_TASKS });
    });
    after(async () => {
      await h?.close();
      await receiver?.close();
      await op?.stop();
    });

    const messagesTo = (path: string) => receiver.received.filter((m) => m.path === path);

    it('shows the secret once, never in list or get, refuses bad input, and enforces permissions', async () => {
      const t = await h.tenant();
      const { id, secret } = await createEndpoint(h, t.adminKey, receiver.url('/once'));
      const got = await h.call({ method: 'GET', url: `/api/v1/webhooks/${id}`, key: t.adminKey });
      assert.equal(got.status, 200, got.text);
      assert.deepEqual(got.json.events, ALL_EVENTS);
      const listed = await h.call({ method: 'GET', url: '/api/v1/webhooks', key: t.adminKey });
      assert.deepEqual(listed.json.items.map((e: { id: string }) => e.id), [id]);
      const patched = await h.call({ method: 'PATCH', url: `/api/v1/webhooks/${id}`, key: t.adminKey, body: { events: ['connection.deleted'], enabled: false } });
      assert.equal(patched.status, 200, patched.text);
      assert.deepEqual(patched.json.events, ['connection.deleted']);
      const rolled = await h.call({ method: 'POST', url: `/api/v1/webhooks/${id}/_roll_secret`, key: t.adminKey });
      assert.equal(rolled.status, 200, rolled.text);
      assert.notEqual(rolled.json.secret, secret);
      const newSecret = rolled.json.secret as string;
      for (const answer of [got, listed, patched]) {
        assert.ok(!answer.text.includes(secret.slice(6)) && !answer.text.includes(newSecret.slice(6)), 'no answer but create and roll holds a secret');
      }
      assert.ok(!h.logs().includes(secret.slice(6)) && !h.logs().includes(newSecret.slice(6)), 'no log line holds a secret');
      const stored = await h.latchkey.store.get('webhook_endpoint', t.id, id);
      assert.equal(stored.attributes.signingSecret, undefined);

      const bad = async (body: unknown, field: string) => {
        const res = await h.call({ method: 'POST', url: '/api/v1/webhooks', key: t.adminKey, body });
        assertError(res, 400, 'validation_failed');
        assert.ok(res.json.error.details.fields.some((f: { path: string }) => f.path === field), res.text);
      };
      await bad({ url: 'http://hooks.example.com/x', events: ['connection.created'] }, 'url');
      await bad({ url: 'https://user:pw@hooks.example.com/x', events: ['connection.created'] }, 'url');
      await bad({ url: 'ftp://hooks.example.com/x', events: ['connection.created'] }, 'url');
      await bad({ url: 'https://hooks.example.com/x', events: [] }, 'events');
      await bad({ url: 'https://hooks.example.com/x', events: ['connection.exploded'] }, 'events.0');
      await bad({ events: ['connection.created'] }, 'url');
      await bad({ url: 'https://hooks.example.com/x', events: ['connection.created'], secret: 'mine' }, '');

      const editor = await t.user(['editor']);
      const { key: editorKey } = await t.key(editor.id);
      assert.equal((await h.call({ method: 'GET', url: `/api/v1/webhooks/${id}`, key: editorKey })).status, 200);
      const viewer = await t.user(['viewer']);
      const { key: viewerKey } = await t.key(viewer.id);
      assertError(await h.call({ method: 'GET', url: '/api/v1/webhooks', key: viewerKey }), 403, 'forbidden');
      assertError(await h.call({ method: 'POST', url: '/api/v1/webhooks', key: viewerKey, body: { url: 'https://a.example.com', events: ['connection.created'] } }), 403, 'forbidden');
      assertError(await h.call({ method: 'POST', url: `/api/v1/webhooks/${id}/_roll_secret`, key: viewerKey }), 403, 'forbidden');

      assert.equal((await h.call({ method: 'DELETE', url: `/api/v1/webhooks/${id}`, key: t.adminKey })).status, 204);
      assertError(await h.call({ method: 'GET', url: `/api/v1/webhooks/${id}`, key: t.adminKey }), 404, 'not_found');
    });

    it('delivers every connection event, signed, to subscribed endpoints only, and never a token', async () => {
      const t = await h.tenant();
      const all = await createEndpoint(h, t.adminKey, receiver.url('/all'));
      const deletedOnly = await createEndpoint(h, t.adminKey, receiver.url('/deleted'), ['connection.deleted']);
      const other = await h.tenant();
      await createEndpoint(h, other.adminKey, receiver.url('/other-tenant'));

      const connector = await h.call({
        method: 'POST',
        url: '/api/v1/connectors',
        key: t.adminKey,
        body: {
          name: randomName('oidc'),
          provider: 'oidc',
          authType: 'oauth_authorization_code',
          tokenMode: 'shared',
          config: { issuer: op.issuer, clientId: op.clients.basic.clientId, scopes: 'openid offline_access api:read' },
          secrets: { clientSecret: op.clients.basic.clientSecret },
        },
      });
      assert.equal(connector.status, 201, connector.text);
      const connectorId = connector.json.id as string;
      const authorized = await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/oauth/authorize`, key: t.adminKey, body: {} });
      assert.equal(authorized.status, 200, authorized.text);
      const back = await op.signIn(authorized.json.authorizationUrl, { accountId: 'alice' });
      assert.equal((await h.call({ method: 'GET', url: `${back.pathname}${back.search}` })).status, 200);
      const tokens: string[] = [];
      const keepTokens = async () => {
        const a = (await h.latchkey.store.getDecrypted(CONNECTION_TYPE.name, t.id, connectionId(connectorId))).attributes;
        tokens.push(String(a.accessToken), String(a.refreshToken));
      };
      await keepTokens();

      // The provider is down when the token is due: refresh_failed; back up after the backoff: recovered.
      op.setDown(true);
      h.clock.advance(61_000);
      assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey }), 503, 'connection_degraded');
      op.setDown(false);
      h.clock.advance(5_000);
      const token = await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey });
      assert.equal(token.status, 200, token.text);
      tokens.push(token.json.accessToken);
      await keepTokens();
      const disconnected = await h.call({ method: 'DELETE', url: `/api/v1/connectors/${connectorId}/connection`, key: t.adminKey });
      assert.equal(disconnected.status, 200, disconnected.text);

      // A connection without a refresh token whose token expired: needs reauthorization.
      h.clock.advance(1000);
      await h.latchkey.oauth.connections.save(t.id, connectorId, null, {
        accessToken: `at-${randomBytes(12).toString('hex')}`,
        tokenType: 'bearer',
        expiresAt: new Date(h.clock.now().getTime() - 1000).toISOString(),
      });
      assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey }), 409, 'needs_reauthorization');

      const expected = ['connection.created', 'connection.refresh_failed', 'connection.recovered', 'connection.deleted', 'connection.needs_reauthorization'];
      const messages = await until('five events at /all', () => (messagesTo('/all').length >= expected.length ? messagesTo('/all') : undefined));
      const bodies = messages.map((m) => verified(all.secret, m));
      assert.deepEqual(bodies.map((b) => b.type), expected);
      const id = connectionId(connectorId);
      assert.deepEqual(bodies[0]?.data, { connectorId, connectionId: id, userId: null, endUserId: null, status: 'active', errorCode: null });
      assert.equal(bodies[1]?.data.status, 'degraded');
      assert.equal(typeof bodies[1]?.data.errorCode, 'string');
      assert.deepEqual(bodies[2]?.data, { connectorId, connectionId: id, userId: null, endUserId: null, status: 'active', errorCode: null });
      assert.deepEqual(bodies[3]?.data, { connectorId, connectionId: id, userId: null, endUserId: null, status: 'deleted', errorCode: null });
      assert.deepEqual(bodies[4]?.data, { connectorId, connectionId: id, userId: null, endUserId: null, status: 'needs_reauthorization', errorCode: 'no_refresh_token' });
      // Distinct message ids; a receiver rejects a signature under another secret.
      assert.equal(new Set(messages.map((m) => m.headers['webhook-id'])).size, messages.length);
      assert.throws(() => verified(deletedOnly.secret, messages[0] as Received));

      const onlyDeleted = await until('the delete at /deleted', () => (messagesTo('/deleted').length >= 1 ? messagesTo('/deleted') : undefined));
      assert.deepEqual(onlyDeleted.map((m) => verified(deletedOnly.secret, m).type), ['connection.deleted']);
      assert.equal(messagesTo('/other-tenant').length, 0);

      for (const m of receiver.received) {
        for (const secretValue of tokens) assert.ok(!m.body.includes(secretValue) && !JSON.stringify(m.headers).includes(secretValue), 'no token in any webhook');
        assert.doesNotMatch(m.body, /"[A-Za-z_]*(token|secret)[A-Za-z_]*":/i, "no field named like a credential");
      }

      // The receiver answered; the outcome is recorded right after.
      const deliveries = await until('every delivery recorded', async () => {
        const res = await h.call({ method: 'GET', url: `/api/v1/webhooks/${all.id}/deliveries`, key: t.adminKey });
        assert.equal(res.status, 200, res.text);
        return res.json.items.every((d: { status: string }) => d.status === 'succeeded') ? res : undefined;
      });
      assert.equal(deliveries.json.items.length, expected.length);
      const newest = deliveries.json.items[0];
      assert.equal(newest.eventType, 'connection.needs_reauthorization');
      assert.equal(newest.status, 'succeeded');
      assert.equal(newest.attemptLog.length, 1);
      assert.equal(newest.attemptLog[0].statusCode, 204);
      assert.equal(newest.attemptLog[0].errorCode, null);

      // Redelivery: the same webhook-id, signed again.
      const redelivered = await h.call({ method: 'POST', url: `/api/v1/webhooks/${all.id}/deliveries/${newest.id}/_redeliver`, key: t.adminKey });
      assert.equal(redelivered.status, 202, redelivered.text);
      const again = await until('the redelivery', () => (messagesTo('/all').length > expected.length ? messagesTo('/all').at(-1) : undefined));
      assert.equal(again.headers['webhook-id'], newest.messageId);
      assert.equal(verified(all.secret, again).type, 'connection.needs_reauthorization');
    });

    it('signs with the old and the new secret after a roll', async () => {
      const t = await h.tenant();
      const endpoint = await createEndpoint(h, t.adminKey, receiver.url('/rolled'), ['connection.deleted']);
      const rolled = await h.call({ method: 'POST', url: `/api/v1/webhooks/${endpoint.id}/_roll_secret`, key: t.adminKey });
      assert.equal(rolled.status, 200, rolled.text);
      await h.latchkey.webhooks.emit(t.id, 'connection.deleted', { connectorId: 'connector_x', connectionId: 'shared:connector_x', userId: null, endUserId: null, status: 'deleted', errorCode: null });
      const [message] = await until('the message at /rolled', () => (messagesTo('/rolled').length > 0 ? messagesTo('/rolled') : undefined));
      assert.equal(verified(rolled.json.secret, message as Received).type, 'connection.deleted');
      assert.equal(verified(endpoint.secret, message as Received).type, 'connection.deleted');
      assert.equal(String(message?.headers['webhook-signature']).split(' ').length, 2);
    });

    it('refuses event data that holds a credential field', async () => {
      const t = await h.tenant();
      await assert.rejects(h.latchkey.webhooks.emit(t.id, 'connection.created', { connectorId: 'c', nested: { accessToken: 'x' } }), TypeError);
      await assert.rejects(h.latchkey.webhooks.emit(t.id, 'connection.exploded' as never, {}), TypeError);
    });

    it('answers not_found for another tenant\'s endpoints and deliveries', async () => {
      const a = await h.tenant();
      const b = await h.tenant();
      const endpoint = await createEndpoint(h, a.adminKey, receiver.url('/tenant-a'), ['connection.deleted']);
      await h.latchkey.webhooks.emit(a.id, 'connection.deleted', { connectorId: 'connector_y', connectionId: 'shared:connector_y', userId: null, endUserId: null, status: 'deleted', errorCode: null });
      const [delivery] = await until('a delivery', async () => {
        const items = await h.latchkey.webhooks.deliveries(a.id, endpoint.id);
        return items.length > 0 ? items : undefined;
      });
      const base = `/api/v1/webhooks/${endpoint.id}`;
      assertError(await h.call({ method: 'GET', url: base, key: b.adminKey }), 404, 'not_found');
      assertError(await h.call({ method: 'PATCH', url: base, key: b.adminKey, body: { enabled: false } }), 404, 'not_found');
      assertError(await h.call({ method: 'POST', url: `${base}/_roll_secret`, key: b.adminKey }), 404, 'not_found');
      assertError(await h.call({ method: 'GET', url: `${base}/deliveries`, key: b.adminKey }), 404, 'not_found');
      assertError(await h.call({ method: 'POST', url: `${base}/deliveries/${delivery?.id}/_redeliver`, key: b.adminKey }), 404, 'not_found');
      assertError(await h.call({ method: 'DELETE', url: base, key: b.adminKey }), 404, 'not_found');
      // Tenant b's own endpoint does not reach tenant a's delivery either.
      const own = await createEndpoint(h, b.adminKey, receiver.url('/tenant-b'), ['connection.deleted']);
      assertError(await h.call({ method: 'POST', url: `/api/v1/webhooks/${own.id}/deliveries/${delivery?.id}/_redeliver`, key: b.adminKey }), 404, 'not_found');
      assert.equal((await h.call({ method: 'GET', url: base, key: a.adminKey })).status, 200);
    });
  });

  describe('retries', () => {
    let h: HttpHarness;
    let receiver: Receiver;
    before(async () => {
      receiver = await startReceiver();
      h = await createHttpHarness(dialect, ENV, { webhooks: { maxAttempts: 3, backoff: { baseMs: 10_000, maxMs: 20_000 } }, tasks: ATTEMPT_TASKS });
    });
    after(async () => {
      await h?.close();
      await receiver?.close();
    });

    const event = { connectorId: 'connector_r', connectionId: 'shared:connector_r', userId: null, endUserId: null, status: 'deleted', errorCode: null };
    const deliveriesOf = async (tenantId: string, endpointId: string) => h.latchkey.webhooks.deliveries(tenantId, endpointId);

    it('retries a failing receiver with backoff until it answers, with the same webhook-id', async () => {
      const t = await h.tenant();
      const endpoint = await createEndpoint(h, t.adminKey, receiver.url('/flaky'), ['connection.deleted']);
      receiver.answer = (path, count) => (path === '/flaky' && count < 3 ? 500 : 204);
      await h.latchkey.webhooks.emit(t.id, 'connection.deleted', event);
      for (const attempt of [1, 2]) {
        const [failed] = await until(`failed attempt ${attempt}`, async () => {
          const items = await deliveriesOf(t.id, endpoint.id);
          return items[0]?.attempts === attempt ? items : undefined;
        });
        assert.equal(failed?.status, 'pending');
        assert.equal(failed?.lastStatusCode, 500);
        assert.equal(failed?.lastError, 'http_500');
        assert.equal(failed?.attemptLog.at(-1)?.responseSnippet, 'receiver says no');
        // Exponential with equal jitter: half to all of 10 s, then of 40 s capped at 20 s.
        const delay = Date.parse(failed?.nextAttemptAt ?? '') - Date.parse(failed?.lastAttemptAt ?? '');
        const full = attempt === 1 ? 10_000 : 20_000;
        assert.ok(delay >= full / 2 && delay <= full, `delay ${delay} for attempt ${attempt}`);
        h.clock.advance(full);
      }
      const [done] = await until('success', async () => {
        const items = await deliveriesOf(t.id, endpoint.id);
        return items[0]?.status === 'succeeded' ? items : undefined;
      });
      assert.equal(done?.attempts, 3);
      assert.deepEqual(done?.attemptLog.map((a) => a.statusCode), [500, 500, 204]);
      const sent = receiver.received.filter((m) => m.path === '/flaky');
      assert.equal(sent.length, 3);
      assert.equal(new Set(sent.map((m) => m.headers['webhook-id'])).size, 1);
      for (const m of sent) verified(endpoint.secret, m);
    });

    it('gives up after the last attempt, records a refused connection, and a redelivery tries again', async () => {
      const t = await h.tenant();
      // A port nobody listens on: the connection is refused.
      const closed = await startReceiver();
      const deadUrl = closed.url('/dead');
      await closed.close();
      const endpoint = await createEndpoint(h, t.adminKey, deadUrl, ['connection.deleted']);
      await h.latchkey.webhooks.emit(t.id, 'connection.deleted', event);
      const [failed] = await until('the delivery to fail for good', async () => {
        h.clock.advance(20_000);
        const items = await deliveriesOf(t.id, endpoint.id);
        return items[0]?.status === 'failed' ? items : undefined;
      });
      assert.equal(failed?.attempts, 3);
      assert.equal(failed?.nextAttemptAt, null);
      assert.ok(failed?.attemptLog.every((a) => a.statusCode === null && a.errorCode === 'network_error'), JSON.stringify(failed?.attemptLog));

      // The receiver is back at another URL: point the endpoint there and redeliver.
      const patched = await h.call({ method: 'PATCH', url: `/api/v1/webhooks/${endpoint.id}`, key: t.adminKey, body: { url: receiver.url('/revived') } });
      assert.equal(patched.status, 200, patched.text);
      receiver.answer = () => 204;
      const res = await h.call({ method: 'POST', url: `/api/v1/webhooks/${endpoint.id}/deliveries/${failed?.id}/_redeliver`, key: t.adminKey });
      assert.equal(res.status, 202, res.text);
      assert.equal(res.json.status, 'pending');
      const [message] = await until('the redelivery', () => {
        const got = receiver.received.filter((m) => m.path === '/revived');
        return got.length > 0 ? got : undefined;
      });
      assert.equal(message?.headers['webhook-id'], failed?.messageId);
      verified(endpoint.secret, message as Received);
      const [done] = await until('success', async () => {
        const items = await deliveriesOf(t.id, endpoint.id);
        return items[0]?.status === 'succeeded' ? items : undefined;
      });
      assert.equal(done?.attempts, 4);
    });
  });

  describe('restart', () => {
    it('delivers after a restart what was pending when Latchkey closed', async (t) => {
      const tdb = await createTestDatabase(dialect);
      const receiver = await startReceiver();
      t.after(async () => {
        await receiver.close();
        await tdb.dispose();
      });
      const settings = loadSettings({ env: latchkeyEnv(tdb, { ...ENV, LATCHKEY_LOG_LEVEL: 'silent' }) });
      const tasks = ATTEMPT_TASKS;
      const first = await createLatchkey({ settings, clock: manualClock(), tasks, http: false });
      const tenant = await first.identity.tenants.create({ name: randomName('t') });
      const { endpoint, secret } = await first.webhooks.endpoints.create(SYSTEM_ACTOR, tenant.id, { url: receiver.url('/restart'), events: ['connection.created'] });
      await first.webhooks.emit(tenant.id, 'connection.created', { connectorId: 'connector_z', connectionId: 'shared:connector_z', userId: null, endUserId: null, status: 'active', errorCode: null });
      const [pending] = await first.webhooks.deliveries(tenant.id, endpoint.id);
      assert.equal(pending?.status, 'pending');
      await first.close();
      assert.equal(receiver.received.length, 0);

      const second = await createLatchkey({ settings, clock: manualClock(), tasks, http: false, background: true });
      t.after(() => second.close());
      const [message] = await until('the delivery after the restart', () => (receiver.received.length > 0 ? receiver.received : undefined));
      assert.equal(message?.headers['webhook-id'], pending?.messageId);
      assert.equal(verified(secret, message as Received).type, 'connection.created');
      const [delivered] = await until('the delivery to be recorded', async () => {
        const items = await second.webhooks.deliveries(tenant.id, endpoint.id);
        return items[0]?.status === 'succeeded' ? items : undefined;
      });
      assert.equal(delivered?.attempts, 1);
    });
  });
});
