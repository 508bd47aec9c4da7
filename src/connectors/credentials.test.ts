import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import { LatchkeyError } from '../core/index.js';
import { createAuditLog, type Actor } from '../identity/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture, type StoreFixture } from '../../test/support/store.js';
import { loadCatalog } from './catalog.js';
import { CONNECTOR_TYPE, createConnectorService, type ConnectorService } from './connectors.js';
import { connectorCredentialSchema } from './credentials.js';

const catalog = loadCatalog();
const ACTOR: Actor = { type: 'user', tenantId: 'ten_a', userId: 'usr_admin' };
const BASE = 'https://api.internal.example/v1';
const secret = (): string => `s3cr3t-${randomBytes(18).toString('base64url')}`;

interface Fixture {
  f: StoreFixture;
  connectors: ConnectorService;
  audit: ReturnType<typeof createAuditLog>;
  tenantA: string;
  tenantB: string;
}

async function fixture(dialect: 'sqlite' | 'postgres'): Promise<Fixture> {
  const f = await createStoreFixture(dialect, [CONNECTOR_TYPE]);
  const audit = createAuditLog({ db: f.handle.db });
  const tenant = () => `ten_${randomBytes(6).toString('hex')}`;
  return { f, audit, connectors: createConnectorService({ store: f.store, catalog, audit }), tenantA: tenant(), tenantB: tenant() };
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

await eachDialect('connector credentials', (dialect) => {
  it('hands out the credential of each static auth type in its typed shape, and audits each handout without it', async () => {
    const { f, connectors, audit, tenantA } = await fixture(dialect);
    try {
      const values = { header: secret(), query: secret(), stripe: secret(), username: `svc-${randomBytes(4).toString('hex')}`, password: secret(), token: secret() };
      const create = (body: Record<string, unknown>) => connectors.create(ACTOR, tenantA, { name: 'c', ...body });
      const header = await create({ provider: 'http', authType: 'api_key', config: { apiBaseUrl: BASE, name: 'X-Api-Key' }, secrets: { apiKeyValue: values.header } });
      const query = await create({ provider: 'http', authType: 'api_key', config: { apiBaseUrl: BASE, in: 'query', name: 'api_key' }, secrets: { apiKeyValue: values.query } });
      const stripe = await create({ provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: values.stripe } });
      const basic = await create({ provider: 'http', authType: 'basic', config: { apiBaseUrl: BASE }, secrets: { username: values.username, password: values.password } });
      const bearer = await create({ provider: 'http', authType: 'bearer', config: { apiBaseUrl: BASE }, secrets: { token: values.token } });

      const expected = [
        [header, { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: values.header }],
        [query, { authType: 'api_key', in: 'query', name: 'api_key', prefix: '', key: values.query }],
        [stripe, { authType: 'api_key', in: 'header', name: 'Authorization', prefix: 'Bearer ', key: values.stripe }],
        [basic, { authType: 'basic', username: values.username, password: values.password }],
        [bearer, { authType: 'bearer', token: values.token }],
      ] as const;
      for (const [connector, credential] of expected) {
        const issued = await connectors.issueCredential(ACTOR, tenantA, connector.id);
        assert.deepEqual(issued, credential);
        assert.deepEqual(connectorCredentialSchema.parse(issued), credential, 'the answer schema passes it unchanged');
      }

      const events = (await audit.list(tenantA, { action: 'connector.credential_issued' })).items;
      assert.deepEqual(
        events.map((e) => [e.target, e.actor, e.details]).reverse(),
        expected.map(([connector, credential]) => [connector.id, 'user:usr_admin', { authType: credential.authType }]),
      );
      const shown = JSON.stringify([await audit.list(tenantA, { limit: 500 }), await connectors.list(tenantA), await connectors.get(tenantA, basic.id)]);
      for (const value of Object.values(values)) assert.ok(!shown.includes(value), 'no audit event or read holds a credential');
    } finally {
      await f.dispose();
    }
  });

  it('refuses OAuth connectors (their tokens come from connections), and answers not_found for another tenant\'s connector', async () => {
    const { f, connectors, audit, tenantA, tenantB } = await fixture(dialect);
    try {
      const oauth = await connectors.create(ACTOR, tenantA, {
        name: 'OIDC',
        provider: 'oidc',
        authType: 'oauth_client_credentials',
        config: { issuer: 'https://idp.example', clientId: 'c' },
        secrets: { clientSecret: secret() },
      });
      const refused = await rejectsWith(connectors.issueCredential(ACTOR, tenantA, oauth.id), 'invalid_request');
      assert.match(refused.message, /auth type oauth_client_credentials, which has no stored credential/);

      const token = secret();
      const bearer = await connectors.create(ACTOR, tenantA, { name: 'PAT', provider: 'github', authType: 'bearer', secrets: { token } });
      const foreign = await rejectsWith(connectors.issueCredential(ACTOR, tenantB, bearer.id), 'not_found');
      assert.ok(!foreign.message.includes(token));
      await rejectsWith(connectors.issueCredential(ACTOR, tenantA, 'connector_0000000000000000'), 'not_found');
      await rejectsWith(connectors.issueCredential(ACTOR, tenantA, 'not-an-id'), 'not_found');
      assert.deepEqual((await audit.list(tenantA, { action: 'connector.credential_issued' })).items, [], 'nothing handed out, nothing audited');
      assert.deepEqual((await audit.list(tenantB, { action: 'connector.credential_issued' })).items, []);
    } finally {
      await f.dispose();
    }
  });

  it('hands out nothing when the handout cannot be audited', async () => {
    const { f, tenantA } = await fixture(dialect);
    try {
      const real = createAuditLog({ db: f.handle.db });
      let failing = false;
      const audit = { ...real, record: async (...args: Parameters<typeof real.record>) => {
        if (failing) throw new Error('audit storage failed');
        await real.record(...args);
      } };
      const connectors = createConnectorService({ store: f.store, catalog, audit });
      const bearer = await connectors.create(ACTOR, tenantA, { name: 'PAT', provider: 'github', authType: 'bearer', secrets: { token: secret() } });
      failing = true;
      await assert.rejects(connectors.issueCredential(ACTOR, tenantA, bearer.id), /audit storage failed/);
    } finally {
      await f.dispose();
    }
  });

  it('validates http connectors as a whole: bad URL, missing name, NUL bytes, a secret in config', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const fields = async (body: Record<string, unknown>) => {
        const err = await rejectsWith(connectors.create(ACTOR, tenantA, { name: 'c', provider: 'http', ...body }), 'validation_failed');
        return Object.fromEntries(((err.details?.fields ?? []) as { path: string; message: string }[]).map((x) => [x.path, x.message]));
      };
      const key = secret();
      const plain = await fields({ authType: 'api_key', config: { apiBaseUrl: 'http://api.internal.example' }, secrets: { apiKeyValue: key } });
      assert.deepEqual(Object.keys(plain).sort(), ['config.apiBaseUrl', 'config.name']);
      assert.match(plain['config.apiBaseUrl'] ?? '', /^uses plain http, which this server refuses: use https/);
      assert.equal(plain['config.name'], 'is required');
      assert.deepEqual(await fields({ authType: 'bearer', config: { apiBaseUrl: 'mailto:ops@example.com' }, secrets: { token: key } }), {
        'config.apiBaseUrl': 'must be an https URL (http only for localhost, 127.0.0.0/8 or [::1])',
      });
      assert.deepEqual(await fields({ authType: 'bearer', config: {}, secrets: {} }), {
        'config.apiBaseUrl': 'is required',
        'secrets.token': 'is required for auth type bearer',
      });
      assert.deepEqual(await fields({ authType: 'api_key', config: { apiBaseUrl: BASE, name: 'X-Key\u0000' }, secrets: { apiKeyValue: key } }), {
        'config.name': 'must not contain control characters',
      });
      assert.deepEqual(await fields({ authType: 'basic', config: { apiBaseUrl: BASE, password: key }, secrets: { username: 'u', password: key } }), {
        'config.password': 'is a secret; it belongs in "secrets", never in "config"',
      });
      const oauth = await fields({ authType: 'oauth_authorization_code', config: { apiBaseUrl: BASE } });
      assert.equal(oauth.authType, 'must be one of api_key, basic, bearer for Generic HTTP API');
      // A provider id with a typo names the nearest ids.
      const typo = await rejectsWith(connectors.create(ACTOR, tenantA, { name: 'c', provider: 'htpp', authType: 'bearer', secrets: { token: key } }), 'validation_failed');
      assert.deepEqual(typo.details?.fields, [{ path: 'provider', message: 'is not a provider in the catalog; did you mean http?' }]);
      // Without --allow-insecure-loopback, even a loopback http base URL is refused.
      const local = await fields({ authType: 'bearer', config: { apiBaseUrl: 'http://127.0.0.1:8080' }, secrets: { token: key } });
      assert.match(local['config.apiBaseUrl'] ?? '', /--allow-insecure-loopback/);
      assert.deepEqual((await connectors.list(tenantA)).items, []);
    } finally {
      await f.dispose();
    }
  });
});
