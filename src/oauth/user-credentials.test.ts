import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { CONNECTOR_TYPE, createConnectorService, loadCatalog, type ConnectorService } from '../connectors/index.js';
import { DecryptionError, LatchkeyError } from '../core/index.js';
import { createAuditLog, type Actor, type AuditLog } from '../identity/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture, type StoreFixture } from '../../test/support/store.js';
import { createClientResolver } from './client-resolver.js';
import { CONNECTION_TYPE, createConnectionStore } from './connections.js';
import { createServerResolver } from './flow-server.js';
import { createOutbound } from '../outbound/index.js';
import { createUserCredentials, type UserCredentials } from './user-credentials.js';

const ACTOR: Actor = { type: 'user', tenantId: 'ten_a', userId: 'usr_app' };
const secret = (prefix: string) => `${prefix}-${randomBytes(18).toString('base64url')}`;
const tenant = () => `ten_${randomBytes(6).toString('hex')}`;

interface Fixture {
  f: StoreFixture;
  connectors: ConnectorService;
  credentials: UserCredentials;
  audit: AuditLog;
  t: string;
}

async function fixture(dialect: 'sqlite' | 'postgres'): Promise<Fixture> {
  const f = await createStoreFixture(dialect, [CONNECTOR_TYPE, CONNECTION_TYPE]);
  const audit = createAuditLog({ db: f.handle.db });
  const connectors = createConnectorService({ store: f.store, catalog: loadCatalog(), audit });
  return { f, connectors, audit, credentials: createUserCredentials({ store: f.store, connectors, audit }), t: tenant() };
}

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<LatchkeyError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof LatchkeyError, `expected a LatchkeyError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

const httpConnector = (connectors: ConnectorService, t: string, authType: 'api_key' | 'basic' | 'bearer', tokenMode: 'per_user' | 'shared' = 'per_user') =>
  connectors.create(ACTOR, t, {
    name: `http ${authType}`,
    provider: 'http',
    authType,
    tokenMode,
    config: { apiBaseUrl: 'https://api.example.com/v1', ...(authType === 'api_key' ? { name: 'X-Api-Key' } : {}) },
    ...(tokenMode === 'shared' ? { secrets: authType === 'api_key' ? { apiKeyValue: secret('k') } : authType === 'basic' ? { username: 'u', password: secret('p') } : { token: secret('t') } } : {}),
  });

await eachDialect('users\' own credentials', (dialect) => {
  it('stores each end user\'s credential sealed as their connection, hands it out typed, replaces it on reconnect, and audits without the value', async () => {
    const { f, connectors, credentials, audit, t } = await fixture(dialect);
    try {
      const keyed = await httpConnector(connectors, t, 'api_key');
      const basic = await httpConnector(connectors, t, 'basic');
      const bearer = await httpConnector(connectors, t, 'bearer');
      const [aliceKey, bobKey, password, token] = [secret('alice'), secret('bob'), secret('pw'), secret('tok')];
      const saved = await credentials.save(ACTOR, t, keyed.id, { endUserId: 'alice' }, { credential: { key: aliceKey } });
      assert.equal(saved.id, `per-user:${keyed.id}:end-user:alice`);
      assert.deepEqual([saved.endUserId, saved.tokenType, saved.status], ['alice', 'api_key', 'active']);
      assert.ok(!JSON.stringify(saved).includes(aliceKey), 'the answer holds no credential');
      await credentials.save(ACTOR, t, keyed.id, { endUserId: 'bob' }, { credential: { key: bobKey } });
      await credentials.save(ACTOR, t, basic.id, 'usr_7', { credential: { username: 'ada', password } });
      await credentials.save(ACTOR, t, bearer.id, { endUserId: 'alice' }, { credential: { token } });

      const of = async (connectorId: string, owner: Parameters<UserCredentials['credentialFor']>[1]) =>
        (await credentials.credentialFor(await connectors.getResolved(t, connectorId), owner)).credential;
      assert.deepEqual(await of(keyed.id, { endUserId: 'alice' }), { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: aliceKey });
      assert.deepEqual(await of(keyed.id, { endUserId: 'bob' }), { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: bobKey });
      assert.deepEqual(await of(basic.id, 'usr_7'), { authType: 'basic', username: 'ada', password });
      assert.deepEqual(await of(bearer.id, { endUserId: 'alice' }), { authType: 'bearer', token });
      await rejectsWith(of(keyed.id, { endUserId: 'carol' }), 'not_connected');
      await rejectsWith(of(keyed.id, 'alice'), 'not_connected'); // a Latchkey user named alice is someone else
      await rejectsWith(of(keyed.id, null), 'invalid_request');

      // A reconnect replaces the credential.
      const newer = secret('alice2');
      await credentials.save(ACTOR, t, keyed.id, { endUserId: 'alice' }, { credential: { key: newer } });
      assert.equal(((await of(keyed.id, { endUserId: 'alice' })) as { key: string }).key, newer);
      const issued = await credentials.issue(ACTOR, t, keyed.id, { endUserId: 'bob' });
      assert.equal((issued as { key: string }).key, bobKey);

      // Never in clear in the database, and ordinary reads leave it out.
      const rows = await f.handle.db.selectFrom('objects').select(['attributes', 'secrets']).where('tenant_id', '=', t).execute();
      for (const value of [aliceKey, newer, bobKey, password, token]) {
        assert.ok(!JSON.stringify(rows).includes(value), 'no credential in clear in the database');
      }
      const plain = await f.store.get(CONNECTION_TYPE, t, saved.id);
      assert.equal('credential' in plain.attributes, false);
      const events = (await audit.list(t, { limit: 50 })).items;
      assert.ok(events.some((e) => e.action === 'connection.credential_saved' && e.target === keyed.id && e.details?.['endUserId'] === 'alice'));
      assert.ok(events.some((e) => e.action === 'connector.credential_issued' && e.details?.['endUserId'] === 'bob'));
      for (const value of [aliceKey, newer, bobKey, password, token]) assert.ok(!JSON.stringify(events).includes(value), 'no credential in the audit log');
    } finally {
      await f.dispose();
    }
  });

  it('refuses every bad credential separately with the exact field, never echoes it, and stores nothing', async () => {
    const { f, connectors, credentials, t } = await fixture(dialect);
    try {
      const keyed = await httpConnector(connectors, t, 'api_key');
      const basic = await httpConnector(connectors, t, 'basic');
      const value = secret('v');
      const cases: [string, unknown, string, RegExp][] = [
        [keyed.id, undefined, '', /must be an object/],
        [keyed.id, 'key', '', /must be an object/],
        [keyed.id, {}, 'credential', /must be an object with key/],
        [keyed.id, { credential: { key: 12345 } }, 'credential.key', /must be a string/],
        [keyed.id, { credential: { key: null } }, 'credential.key', /must be a string/],
        [keyed.id, { credential: { key: '' } }, 'credential.key', /must not be empty/],
        [keyed.id, { credential: { key: `${value}\u0000` } }, 'credential.key', /control characters/],
        [keyed.id, { credential: { key: `${value}\r\nx: y` } }, 'credential.key', /control characters/],
        [keyed.id, { credential: { key: value.padEnd(8193, 'x') } }, 'credential.key', /at most 8192/],
        [keyed.id, { credential: { key: value, token: value } }, 'credential.token', /not part of a api_key credential/],
        [keyed.id, { credential: [value] }, 'credential', /must be an object/],
        [keyed.id, { credential: { key: value }, config: { apiBaseUrl: 'https://evil.example' } }, 'config.apiBaseUrl', /not asked of end users/],
        [keyed.id, { credential: { key: value }, config: 'x' }, 'config', /must be an object/],
        [keyed.id, { credential: { key: value }, accessToken: value }, 'accessToken', /not part of a connection/],
        [basic.id, { credential: { username: 'ada' } }, 'credential.password', /is required/],
        [basic.id, { credential: { username: 'a:da', password: value } }, 'credential.username', /must not contain ":"/],
        [basic.id, { credential: { username: 'a'.repeat(256), password: value } }, 'credential.username', /at most 255/],
      ];
      for (const [connectorId, input, path, message] of cases) {
        const err = await rejectsWith(credentials.save(ACTOR, t, connectorId, { endUserId: 'eve' }, input), 'validation_failed');
        const fields = Object.fromEntries(((err.details?.fields ?? []) as { path: string; message: string }[]).map((x) => [x.path, x.message]));
        assert.match(fields[path] ?? `(no error on "${path}": ${JSON.stringify(err.details)})`, message, `${path} of ${JSON.stringify(input)?.slice(0, 80)}`);
        assert.ok(!err.message.includes(value) && !JSON.stringify(err.details).includes(value) && !err.message.includes('evil.example'), 'the value is not echoed');
      }
      // Bad owners and connectors that take no user credential.
      await rejectsWith(credentials.save(ACTOR, t, keyed.id, { endUserId: 'e\u0000ve' }, { credential: { key: value } }), 'invalid_request');
      await rejectsWith(credentials.save(ACTOR, t, keyed.id, null, { credential: { key: value } }), 'invalid_request');
      const shared = await httpConnector(connectors, t, 'api_key', 'shared');
      await rejectsWith(credentials.save(ACTOR, t, shared.id, { endUserId: 'eve' }, { credential: { key: value } }), 'invalid_request');
      const oauth = await connectors.create(ACTOR, t, {
        name: 'idp',
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { clientId: 'c', authorizationUrl: 'https://idp.example.com/a', tokenUrl: 'https://idp.example.com/t' },
        secrets: { clientSecret: secret('cs') },
      });
      await rejectsWith(credentials.save(ACTOR, t, oauth.id, { endUserId: 'eve' }, { credential: { key: value } }), 'invalid_request');
      // Another tenant's connector is unknown here.
      await rejectsWith(credentials.save(ACTOR, tenant(), keyed.id, { endUserId: 'eve' }, { credential: { key: value } }), 'not_found');
      assert.deepEqual((await createConnectionStore({ store: f.store }).list(t)).items, [], 'nothing was stored');
    } finally {
      await f.dispose();
    }
  });

  it('binds a credential to its connector, end user and config: copied or edited in the database, it does not decrypt', async () => {
    const { f, connectors, credentials, t } = await fixture(dialect);
    try {
      const keyed = await httpConnector(connectors, t, 'api_key');
      await credentials.save(ACTOR, t, keyed.id, { endUserId: 'alice' }, { credential: { key: secret('alice') } });
      await credentials.save(ACTOR, t, keyed.id, { endUserId: 'mallory' }, { credential: { key: secret('mallory') } });
      const alice = `per-user:${keyed.id}:end-user:alice`;
      const mallory = `per-user:${keyed.id}:end-user:mallory`;
      const sealed = await f.handle.db.selectFrom('objects').select(['secrets', 'attributes']).where('id', '=', alice).executeTakeFirstOrThrow();
      await f.handle.db.updateTable('objects').set({ secrets: sealed.secrets }).where('id', '=', mallory).execute();
      const resolved = await connectors.getResolved(t, keyed.id);
      await assert.rejects(credentials.credentialFor(resolved, { endUserId: 'mallory' }), DecryptionError);

      // The config decides where a credential goes: edited in the database, the row no longer opens.
      const zendesk = await connectors.create(ACTOR, t, { name: 'Zendesk', provider: 'zendesk', authType: 'basic', tokenMode: 'per_user', config: {} });
      assert.deepEqual(zendesk.endUserFields, ['subdomain']);
      const saved = await credentials.save(ACTOR, t, zendesk.id, { endUserId: 'alice' }, { credential: { username: 'ada/token', password: secret('zd') }, config: { subdomain: 'acme' } });
      assert.deepEqual(saved.config, { subdomain: 'acme' });
      const forAlice = await credentials.credentialFor(await connectors.getResolved(t, zendesk.id), { endUserId: 'alice' });
      assert.equal(forAlice.resolved.provider.apiBaseUrl, 'https://acme.zendesk.com/api/v2', 'the end user\'s own API base URL');
      const row = await f.handle.db.selectFrom('objects').select('attributes').where('id', '=', saved.id).executeTakeFirstOrThrow();
      const edited = String(row.attributes).replace('"acme"', '"attacker"');
      assert.notEqual(edited, row.attributes);
      await f.handle.db.updateTable('objects').set({ attributes: edited }).where('id', '=', saved.id).execute();
      await assert.rejects(credentials.credentialFor(await connectors.getResolved(t, zendesk.id), { endUserId: 'alice' }), DecryptionError);
      await rejectsWith(
        credentials.save(ACTOR, t, zendesk.id, { endUserId: 'bob' }, { credential: { username: 'b', password: secret('zd') } }),
        'validation_failed',
      );
    } finally {
      await f.dispose();
    }
  });

  it('the token client resolves a connector\'s end-user endpoints from the connection\'s config', async () => {
    const { f, connectors, t } = await fixture(dialect);
    const outbound = createOutbound();
    try {
      const zendesk = await connectors.create(ACTOR, t, {
        name: 'Zendesk',
        provider: 'zendesk',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { clientId: 'client-1' },
        secrets: { clientSecret: secret('cs') },
      });
      const resolve = createClientResolver({ connectors, servers: createServerResolver(outbound) });
      await rejectsWith(resolve(t, zendesk.id), 'not_connected');
      await rejectsWith(resolve(t, zendesk.id, async () => undefined), 'not_connected');
      const client = await resolve(t, zendesk.id, async () => ({ subdomain: 'acme' }));
      assert.equal(client.tokenUrl, 'https://acme.zendesk.com/oauth/tokens');
      await rejectsWith(resolve(t, zendesk.id, async () => ({ subdomain: 'evil.example.com/x' })), 'validation_failed');
    } finally {
      await outbound.close();
      await f.dispose();
    }
  });
});
