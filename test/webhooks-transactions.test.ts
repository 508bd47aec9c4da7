// A connection change and the webhook deliveries of its event commit together, on both databases.
// The injected failure is the database's own: a trigger that refuses the write of a connection once
// the event's delivery row exists in the same transaction. So the change fails exactly when its
// event was written first, and the delivery must be gone with it (a design that wrote the event
// after the commit would never meet the trigger, and the test would see the change succeed). The
// reverse: a delivery row that cannot be written costs the change nothing (refreshed tokens kept).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { sql } from 'kysely';
import type { DialectName } from '../src/db/index.js';
import { CONNECTION_TYPE, connectionId } from '../src/oauth/index.js';
import { eachDialect, LOOPBACK_EGRESS } from './support/databases.js';
import { assertError, createHttpHarness, randomName, type HttpHarness, type TenantFixture } from './support/http.js';
import { startOidcProvider, type TestProvider } from './support/oidc-provider.js';

const PUBLIC_URL = 'https://latchkey.test';
const ENV = { LATCHKEY_PUBLIC_URL: PUBLIC_URL, LATCHKEY_ALLOW_INSECURE_LOOPBACK: 'true', LATCHKEY_EGRESS_ALLOW: LOOPBACK_EGRESS };
// Delivery attempts are engine tasks: polled often, and leased far beyond the manual clock's jumps
// (which would otherwise expire the lease of an attempt under way and run it twice, as after a crash).
const ATTEMPT_TASKS = { pollIntervalMs: 20, leaseMs: 3_600_000 };
const ALL_EVENTS = ['connection.created', 'connection.refresh_failed', 'connection.needs_reauthorization', 'connection.recovered', 'connection.deleted'];
const INJECTED = 'injected failure: the connection write after its event';

type Operation = 'insert' | 'update' | 'delete';

/**
 * Makes the database refuse `operation` on a connection of the tenant whose transaction already
 * holds a delivery of `eventType` for that tenant. Returns what drops the trigger again.
 */
async function failConnectionWriteAfter(h: HttpHarness, dialect: DialectName, operation: Operation, eventType: string): Promise<() => Promise<void>> {
  const db = h.latchkey.database.db;
  const name = `lk_fail_${operation}`;
  const event = sql.lit(eventType);
  if (dialect === 'postgres') {
    await sql`
      create or replace function lk_fail_after_event() returns trigger language plpgsql as $$
      declare target record;
      begin
        if TG_OP = 'DELETE' then target := OLD; else target := NEW; end if;
        if target.type = ${sql.lit(CONNECTION_TYPE.name)}
           and exists (select 1 from webhook_deliveries d where d.tenant_id = target.tenant_id and d.event_type = TG_ARGV[0]) then
          raise exception ${sql.lit(INJECTED)};
        end if;
        return target;
      end $$`.execute(db);
    await sql`create trigger ${sql.raw(name)} before ${sql.raw(operation)} on objects for each row execute function lk_fail_after_event(${event})`.execute(db);
    return async () => {
      await sql`drop trigger ${sql.raw(name)} on objects`.execute(db);
    };
  }
  const row = operation === 'delete' ? 'old' : 'new';
  await sql`
    create trigger ${sql.raw(name)} before ${sql.raw(operation)} on objects when ${sql.raw(row)}.type = ${sql.lit(CONNECTION_TYPE.name)}
    begin
      select raise(abort, ${sql.lit(INJECTED)})
      where exists (select 1 from webhook_deliveries d where d.tenant_id = ${sql.raw(row)}.tenant_id and d.event_type = ${event});
    end`.execute(db);
  return async () => {
    await sql`drop trigger ${sql.raw(name)}`.execute(db);
  };
}

/** Makes every insert of a webhook delivery fail. Returns what drops the trigger again. */
async function failDeliveryWrites(h: HttpHarness, dialect: DialectName): Promise<() => Promise<void>> {
  const db = h.latchkey.database.db;
  if (dialect === 'postgres') {
    await sql`create or replace function lk_fail_delivery() returns trigger language plpgsql as $$ begin raise exception 'injected failure: no deliveries'; end $$`.execute(db);
    await sql`create trigger lk_fail_delivery before insert on webhook_deliveries for each row execute function lk_fail_delivery()`.execute(db);
    return async () => {
      await sql`drop trigger lk_fail_delivery on webhook_deliveries`.execute(db);
    };
  }
  await sql`create trigger lk_fail_delivery before insert on webhook_deliveries begin select raise(abort, 'injected failure: no deliveries'); end`.execute(db);
  return async () => {
    await sql`drop trigger lk_fail_delivery`.execute(db);
  };
}

await eachDialect('connection events commit with their change', (dialect) => {
  let op: TestProvider;
  let receiver: Server;
  let receiverUrl: string;
  let h: HttpHarness;
  before(async () => {
    op = await startOidcProvider({ redirectUris: [`${PUBLIC_URL}/api/v1/oauth/callback`], accessTokenTtl: 60 });
    receiver = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    // Refreshes are counted across this file's connections: only on-demand ones.
    h = await createHttpHarness(dialect, ENV, { tasks: ATTEMPT_TASKS }, { proactiveRefresh: false });
  });
  after(async () => {
    await h?.close();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
    await op?.stop();
  });

  /** A tenant with an endpoint for every event and a shared OIDC connector on the provider. */
  async function setUp(): Promise<{ t: TenantFixture; endpointId: string; connectorId: string; events: () => Promise<string[]> }> {
    const t = await h.tenant();
    const endpoint = await h.call({ method: 'POST', url: '/api/v1/webhooks', key: t.adminKey, body: { url: receiverUrl, events: ALL_EVENTS } });
    assert.equal(endpoint.status, 201, endpoint.text);
    const endpointId = endpoint.json.endpoint.id as string;
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
    // Oldest first: the order the events happened in.
    const events = async () => (await h.latchkey.webhooks.deliveries(t.id, endpointId, { limit: 100 })).map((d) => d.eventType).reverse();
    return { t, endpointId, connectorId: connector.json.id as string, events };
  }

  /** Authorizes at the provider as `accountId` and brings the browser back; the callback's status. */
  async function connect(t: TenantFixture, connectorId: string, accountId: string): Promise<number> {
    const authorized = await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/oauth/authorize`, key: t.adminKey, body: {} });
    assert.equal(authorized.status, 200, authorized.text);
    const back = await op.signIn(authorized.json.authorizationUrl, { accountId });
    return (await h.call({ method: 'GET', url: `${back.pathname}${back.search}` })).status;
  }

  const connection = (t: TenantFixture, connectorId: string) => h.call({ method: 'GET', url: `/api/v1/connectors/${connectorId}/connection`, key: t.adminKey });

  it('a connect whose token write fails leaves no connection.created delivery', async () => {
    const { t, connectorId, events } = await setUp();
    const restore = await failConnectionWriteAfter(h, dialect, 'insert', 'connection.created');
    try {
      assert.equal(await connect(t, connectorId, 'alice'), 500, 'the callback reports that the account could not be saved');
    } finally {
      await restore();
    }
    assert.match(h.logs(), new RegExp(INJECTED), 'the database refused the write after the event was written');
    assertError(await connection(t, connectorId), 404, 'not_connected');
    assert.deepEqual(await events(), [], 'the delivery was rolled back with the connection');

    assert.equal(await connect(t, connectorId, 'alice'), 200);
    assert.equal((await connection(t, connectorId)).json.status, 'active');
    assert.deepEqual(await events(), ['connection.created']);
  });

  it('a refresh failure whose status write fails leaves no connection.refresh_failed delivery', async () => {
    const { t, connectorId, events } = await setUp();
    assert.equal(await connect(t, connectorId, 'bob'), 200);
    op.setDown(true);
    try {
      h.clock.advance(61_000);
      const restore = await failConnectionWriteAfter(h, dialect, 'update', 'connection.refresh_failed');
      try {
        assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey }), 500, 'internal_error');
      } finally {
        await restore();
      }
      const unchanged = await connection(t, connectorId);
      assert.equal(unchanged.json.status, 'active', 'the failure was not recorded');
      assert.equal(unchanged.json.lastRefreshError, null);
      assert.deepEqual(await events(), ['connection.created'], 'nor was its event');

      assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey }), 503, 'connection_degraded');
      assert.equal((await connection(t, connectorId)).json.status, 'degraded');
      assert.deepEqual(await events(), ['connection.created', 'connection.refresh_failed']);
    } finally {
      op.setDown(false);
    }
  });

  it('a disconnect whose delete fails leaves no connection.deleted delivery', async () => {
    const { t, connectorId, events } = await setUp();
    assert.equal(await connect(t, connectorId, 'carol'), 200);
    // Deliveries list by creation time: the delete's comes later.
    h.clock.advance(1000);
    const restore = await failConnectionWriteAfter(h, dialect, 'delete', 'connection.deleted');
    try {
      assertError(await h.call({ method: 'DELETE', url: `/api/v1/connectors/${connectorId}/connection`, key: t.adminKey }), 500, 'internal_error');
    } finally {
      await restore();
    }
    assert.equal((await connection(t, connectorId)).json.status, 'active', 'still connected');
    assert.deepEqual(await events(), ['connection.created']);

    const gone = await h.call({ method: 'DELETE', url: `/api/v1/connectors/${connectorId}/connection`, key: t.adminKey });
    assert.equal(gone.status, 200, gone.text);
    assertError(await connection(t, connectorId), 404, 'not_connected');
    assert.deepEqual(await events(), ['connection.created', 'connection.deleted']);
  });

  it('a delivery that cannot be written costs a recovery nothing: the rotated tokens are kept', async () => {
    const { t, connectorId, events } = await setUp();
    assert.equal(await connect(t, connectorId, 'dave'), 200);
    op.setDown(true);
    h.clock.advance(61_000);
    assertError(await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey }), 503, 'connection_degraded');
    op.setDown(false);
    h.clock.advance(5_000);
    op.resetCounters();
    const restore = await failDeliveryWrites(h, dialect);
    let token;
    try {
      token = await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey });
    } finally {
      await restore();
    }
    assert.equal(token.status, 200, token.text);
    assert.equal(op.counters.refresh, 1);
    assert.match(h.logs(), /Recording the event connection\.recovered failed; the change is kept without it\./);
    const stored = await h.latchkey.store.getDecrypted(CONNECTION_TYPE, t.id, connectionId(connectorId));
    assert.equal(stored.attributes.accessToken, token.json.accessToken, 'the refreshed tokens were committed');
    assert.equal(stored.attributes.status, 'active');
    assert.deepEqual(await events(), ['connection.created', 'connection.refresh_failed'], 'only the recovery\'s event is missing');

    // The rotated refresh token is the one stored: the next refresh works, and no grant was revoked.
    h.clock.advance(61_000);
    const next = await h.call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key: t.adminKey });
    assert.equal(next.status, 200, next.text);
    assert.notEqual(next.json.accessToken, token.json.accessToken);
    assert.equal(op.counters.refresh, 2);
    assert.equal(op.counters.grantsRevoked, 0);
  });
});
