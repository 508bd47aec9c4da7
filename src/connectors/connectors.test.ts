import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { LatchkeyError } from '../core/index.js';
import { InvalidationBus } from '../db/index.js';
import { createAuditLog, type Actor } from '../identity/index.js';
import { eachDialect } from '../../test/support/databases.js';
import { createStoreFixture, type StoreFixture } from '../../test/support/store.js';
import { loadCatalog } from './catalog.js';
import { CONNECTOR_TYPE, createConnectorService, resolveForEndUser, type ConnectorService } from './connectors.js';
import { credentialOf } from './credentials.js';

const catalog = loadCatalog();
const ACTOR: Actor = { type: 'user', tenantId: 'ten_a', userId: 'usr_admin' };

function secret(): string {
  return `s3cr3t-${randomBytes(18).toString('base64url')}`;
}

interface Fixture {
  f: StoreFixture;
  connectors: ConnectorService;
  tenantA: string;
  tenantB: string;
}

async function fixture(dialect: 'sqlite' | 'postgres'): Promise<Fixture> {
  const f = await createStoreFixture(dialect, [CONNECTOR_TYPE]);
  const audit = createAuditLog({ db: f.handle.db });
  return { f, connectors: createConnectorService({ store: f.store, catalog, audit }), tenantA: `ten_${randomBytes(6).toString('hex')}`, tenantB: `ten_${randomBytes(6).toString('hex')}` };
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

function fieldsOf(err: LatchkeyError): Record<string, string> {
  const fields = (err.details?.fields ?? []) as { path: string; message: string }[];
  return Object.fromEntries(fields.map((f) => [f.path, f.message]));
}

await eachDialect('connector service', (dialect) => {
  it('a connector write and its audit record commit together: an audit that cannot be written leaves no connector', async () => {
    const { f, tenantA } = await fixture(dialect);
    try {
      const real = createAuditLog({ db: f.handle.db });
      // The real audit log, writing its row in the transaction, then failing before the commit.
      const failing = { ...real, record: async (...args: Parameters<typeof real.record>) => {
        await real.record(...args);
        throw new Error('audit storage failed');
      } };
      const connectors = createConnectorService({ store: f.store, catalog, audit: failing });
      await assert.rejects(
        connectors.create(ACTOR, tenantA, { name: 'Stripe', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: secret() } }),
        /audit storage failed/,
      );
      assert.deepEqual((await connectors.list(tenantA)).items, []);
      assert.deepEqual((await real.list(tenantA, { action: 'connector.created' })).items, []);
    } finally {
      await f.dispose();
    }
  });

  it('keeps secrets out of every read, the audit log and the plain columns; flags show what is set', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const clientSecret = secret();
      const apiKeyValue = secret();
      const username = `user-${randomBytes(8).toString('hex')}`;
      const password = secret();
      const graph = await connectors.create(ACTOR, tenantA, {
        name: 'Contoso Graph',
        provider: 'microsoft',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { tenantId: 'contoso.onmicrosoft.com', clientId: '00000000-0000-0000-0000-000000000001' },
        secrets: { clientSecret },
      });
      const stripe = await connectors.create(ACTOR, tenantA, { name: 'Stripe', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue } });
      const bitbucket = await connectors.create(ACTOR, tenantA, { name: 'BB', provider: 'bitbucket', authType: 'basic', secrets: { username, password } });
      assert.deepEqual(graph.secrets, { clientSecret: { set: true } });
      assert.equal(graph.tokenMode, 'per_user');
      assert.deepEqual(graph.config, { tenantId: 'contoso.onmicrosoft.com', clientId: '00000000-0000-0000-0000-000000000001' });
      assert.deepEqual(stripe.secrets, { apiKeyValue: { set: true } });
      assert.equal(stripe.tokenMode, 'shared');
      assert.deepEqual(bitbucket.secrets, { username: { set: true }, password: { set: true } });

      const shown = JSON.stringify([
        graph,
        stripe,
        bitbucket,
        await connectors.get(tenantA, graph.id),
        await connectors.list(tenantA),
        await createAuditLog({ db: f.handle.db }).list(tenantA),
      ]);
      const rows = JSON.stringify(await f.handle.db.selectFrom('objects').select(['id', 'attributes', 'aad_attributes']).execute());
      for (const value of [clientSecret, apiKeyValue, username, password]) {
        assert.ok(!shown.includes(value), 'no read shows a secret');
        assert.ok(!rows.includes(value), 'no plain column holds a secret');
      }
      const list = await connectors.list(tenantA);
      assert.deepEqual(list.items.map((c) => c.id).sort(), [graph.id, stripe.id, bitbucket.id].sort());
      const actions = (await createAuditLog({ db: f.handle.db }).list(tenantA)).items.map((e) => e.action);
      assert.deepEqual(actions.sort(), ['connector.created', 'connector.created', 'connector.created']);

      const resolved = await connectors.getResolved(tenantA, graph.id);
      assert.equal(resolved.clientSecret, clientSecret);
      assert.equal(resolved.clientId, '00000000-0000-0000-0000-000000000001');
      assert.ok(!JSON.stringify(resolved).includes(clientSecret), 'the resolved connector serialises without its secrets');
      assert.ok(!JSON.stringify({ ...resolved }).includes(clientSecret), 'nor does a spread copy');
      const oauth = resolved.provider.oauth;
      assert.ok(oauth && oauth.discovery === undefined);
      assert.equal(oauth.tokenUrl, 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token');
      assert.equal(oauth.clientAuthentication, 'client_secret_post');
      assert.equal((await connectors.getResolved(tenantA, stripe.id)).secrets.apiKeyValue, apiKeyValue);
    } finally {
      await f.dispose();
    }
  });

  it('validates every field at once, config per provider and auth type, secrets per auth type', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const err = await rejectsWith(
        connectors.create(ACTOR, tenantA, {
          name: '',
          provider: 'microsoft',
          authType: 'oauth_authorization_code',
          tokenMode: 'per_user',
          config: { clientId: 'abc', clientSecret: 'oops', tenantId: 'not a tenant!', color: 'blue' },
          secrets: { token: 'x' },
          redirectUri: 'http://example.com/callback',
          allowedReturnOrigins: ['https://app.example.com/path', 'javascript:alert(1)', 'https://ok.example.com'],
        }),
        'validation_failed',
      );
      assert.equal(err.status, 400);
      const fields = fieldsOf(err);
      assert.deepEqual(Object.keys(fields).sort(), [
        'allowedReturnOrigins.0',
        'allowedReturnOrigins.1',
        'config.clientSecret',
        'config.color',
        'config.tenantId',
        'name',
        'redirectUri',
        'secrets.clientSecret',
        'secrets.token',
      ]);
      assert.match(fields['config.clientSecret'] ?? '', /belongs in "secrets"/);
      assert.match(fields['config.tenantId'] ?? '', /^is not in the form it takes \(Directory \(tenant\) id/);
      assert.match(fields['secrets.clientSecret'] ?? '', /is required for auth type oauth_authorization_code/);
      assert.match(fields['secrets.token'] ?? '', /does not apply to auth type oauth_authorization_code/);
      assert.match(fields['redirectUri'] ?? '', /https/);
      assert.ok(!err.message.includes('oops') && !JSON.stringify(err.details).includes('oops'), 'a secret put in config is not echoed');

      const cases: [Record<string, unknown>, string, RegExp][] = [
        [{ name: 'x', provider: 'nope', authType: 'api_key' }, 'provider', /not a provider/],
        [{ name: 'x', provider: 'stripe', authType: 'oauth_authorization_code' }, 'authType', /must be one of api_key/],
        [{ name: 'x', provider: 'stripe', authType: 'magic' }, 'authType', /must be one of none/],
        [{ name: 'x', provider: 'oauth2', authType: 'oauth_client_credentials', tokenMode: 'per_user', config: { clientId: 'c', authorizationUrl: 'https://a.example.com', tokenUrl: 'https://t.example.com' }, secrets: { clientSecret: 's' } }, 'tokenMode', /per_user only/],
        [{ name: 'x', provider: 'stripe', authType: 'api_key', tokenMode: 'per_user', secrets: { apiKeyValue: 'k' } }, 'secrets.apiKeyValue', /each user gives their own credential/],
        [{ name: 'x', provider: 'zendesk', authType: 'oauth_authorization_code', config: { clientId: 'c' }, secrets: { clientSecret: 's' } }, 'config.subdomain', /required/],
        [{ name: 'x', provider: 'stripe', authType: 'api_key', secrets: {} }, 'secrets.apiKeyValue', /required/],
        [{ name: 'x', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: '' } }, 'secrets.apiKeyValue', /empty/],
        [{ name: 'x', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: 5 } }, 'secrets.apiKeyValue', /string/],
        // A value no header can carry is refused when stored, not on every call later (and CR LF smuggles a header).
        [{ name: 'x', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: `${secret()}\r\nX-Injected: 1` } }, 'secrets.apiKeyValue', /control characters/],
        [{ name: 'x', provider: 'github', authType: 'bearer', secrets: { token: `${secret()}\u0000` } }, 'secrets.token', /control characters/],
        [{ name: 'x', provider: 'github', authType: 'bearer', secrets: { token: `${secret()}tok\u00e9n\u2603` } }, 'secrets.token', /beyond Latin-1/],
        [{ name: 'x', provider: 'bitbucket', authType: 'basic', secrets: { username: 'u', password: `${secret()}\n` } }, 'secrets.password', /control characters/],
        [{ name: 'x', provider: 'bitbucket', authType: 'basic', secrets: { username: 'u' } }, 'secrets.password', /required/],
        [{ name: 'x', provider: 'github', authType: 'bearer', secrets: {} }, 'secrets.token', /required/],
        [{ name: 'x', provider: 'oauth2', authType: 'oauth_authorization_code', config: { clientId: 'c', tokenUrl: 'https://t.example.com' }, secrets: { clientSecret: 's' } }, 'config.authorizationUrl', /required/],
        [{ name: 'x', provider: 'oauth2', authType: 'oauth_authorization_code', config: { clientId: 'c', authorizationUrl: 'http://evil.example.com/a', tokenUrl: 'https://t.example.com' }, secrets: { clientSecret: 's' } }, 'config.authorizationUrl', /https/],
        [{ name: 'x', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: 'k' }, extra: 1 }, 'extra', /not a connector field/],
        [{ name: 'x', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: 'k' }, config: 'nope' }, 'config', /object/],
      ];
      for (const [input, path, message] of cases) {
        const caseErr = await rejectsWith(connectors.create(ACTOR, tenantA, input), 'validation_failed');
        assert.match(fieldsOf(caseErr)[path] ?? `(no error on ${path}: ${JSON.stringify(caseErr.details)})`, message, path);
      }
      assert.equal((await connectors.list(tenantA)).items.length, 0, 'nothing was created');
      // A basic password is encoded before it is sent: any printable character will do.
      await connectors.create(ACTOR, tenantA, { name: 'x', provider: 'bitbucket', authType: 'basic', secrets: { username: 'u', password: `${secret()}p\u00e4ssw\u00f6rd\u2603` } });
    } finally {
      await f.dispose();
    }
  });

  it('per-user api_key, basic and bearer connectors hold no credential; end-user fields are left to each end user and resolved for them', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const basic = await connectors.create(ACTOR, tenantA, { name: 'Each own', provider: 'http', authType: 'basic', tokenMode: 'per_user', config: { apiBaseUrl: 'https://api.example.com' } });
      assert.deepEqual(basic.secrets, {}, 'no secret flags: the connector holds none');
      assert.deepEqual(basic.endUserFields, []);
      await rejectsWith(connectors.update(ACTOR, tenantA, basic.id, { secrets: { password: secret() } }), 'validation_failed');
      const resolvedBasic = await connectors.getResolved(tenantA, basic.id);
      assert.throws(() => credentialOf(resolvedBasic), /keeps one credential per user/);

      const zendesk = await connectors.create(ACTOR, tenantA, {
        name: 'Zendesk',
        provider: 'zendesk',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { clientId: 'client-1' },
        secrets: { clientSecret: secret() },
      });
      assert.deepEqual(zendesk.endUserFields, ['subdomain']);
      const open = await connectors.getResolved(tenantA, zendesk.id);
      assert.equal(open.provider.oauth, undefined, 'no endpoint is guessed before the end user names their subdomain');
      assert.equal(open.provider.apiBaseUrl, undefined);
      const acme = resolveForEndUser(open, { subdomain: 'acme' });
      assert.ok(acme.provider.oauth && acme.provider.oauth.discovery === undefined);
      assert.equal(acme.provider.oauth.tokenUrl, 'https://acme.zendesk.com/oauth/tokens');
      assert.equal(acme.provider.apiBaseUrl, 'https://acme.zendesk.com/api/v2');
      assert.equal(acme.clientSecret, open.clientSecret, 'the secrets stay with the resolution');
      assert.deepEqual(Object.keys(acme).includes('clientSecret'), false);
      assert.deepEqual(acme.endUserConfig, { subdomain: 'acme' });
      const bad: [unknown, string, RegExp][] = [
        [{}, 'config.subdomain', /required/],
        [{ subdomain: 'evil.example.com/x' }, 'config.subdomain', /^is not in the form it takes \(The account subdomain/],
        [{ subdomain: 'ac\u0000me' }, 'config.subdomain', /control characters/],
        [{ subdomain: 'a'.repeat(5000) }, 'config.subdomain', /at most 2048/],
        [{ subdomain: 7 }, 'config.subdomain', /string/],
        [{ subdomain: 'acme', clientId: 'mine' }, 'config.clientId', /not one of the fields asked of end users/],
        ['acme', 'config', /object/],
      ];
      for (const [given, path, message] of bad) {
        let caught: unknown;
        try {
          resolveForEndUser(open, given);
        } catch (err) {
          caught = err;
        }
        assert.ok(caught instanceof LatchkeyError && caught.code === 'validation_failed', `${JSON.stringify(given)} is refused`);
        assert.match(fieldsOf(caught)[path] ?? '', message, path);
        assert.ok(!caught.message.includes('evil.example.com') && !caught.message.includes('mine'), 'the value is not echoed');
      }
      // The connector may still fix the field for everyone: then nobody is asked.
      const fixed = await connectors.create(ACTOR, tenantA, {
        name: 'Zendesk acme',
        provider: 'zendesk',
        authType: 'oauth_authorization_code',
        tokenMode: 'per_user',
        config: { clientId: 'client-1', subdomain: 'acme' },
        secrets: { clientSecret: secret() },
      });
      assert.deepEqual(fixed.endUserFields, []);
    } finally {
      await f.dispose();
    }
  });

  it('updates with merge patches: a secret value sets, null clears, absent keeps; provider and auth type are fixed', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const first = secret();
      const created = await connectors.create(ACTOR, tenantA, {
        name: 'Generic',
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        config: { clientId: 'client-1', authorizationUrl: 'https://as.example.com/authorize', tokenUrl: 'https://as.example.com/token', scopes: 'read write' },
        secrets: { clientSecret: first },
        allowedReturnOrigins: ['https://app.example.com/'],
      });
      assert.deepEqual(created.allowedReturnOrigins, ['https://app.example.com']);
      const renamed = await connectors.update(ACTOR, tenantA, created.id, { name: 'Renamed', config: { scopes: null, revocationUrl: 'https://as.example.com/revoke' } });
      assert.equal(renamed.name, 'Renamed');
      assert.deepEqual(renamed.config, { clientId: 'client-1', authorizationUrl: 'https://as.example.com/authorize', tokenUrl: 'https://as.example.com/token', revocationUrl: 'https://as.example.com/revoke' });
      assert.equal((await connectors.getResolved(tenantA, created.id)).clientSecret, first, 'absent secrets are kept');

      const second = secret();
      await connectors.update(ACTOR, tenantA, created.id, { secrets: { clientSecret: second } });
      assert.equal((await connectors.getResolved(tenantA, created.id)).clientSecret, second);
      const cleared = await rejectsWith(connectors.update(ACTOR, tenantA, created.id, { secrets: { clientSecret: null } }), 'validation_failed');
      assert.match(fieldsOf(cleared)['secrets.clientSecret'] ?? '', /required/);
      const fixed = await rejectsWith(connectors.update(ACTOR, tenantA, created.id, { provider: 'oidc', authType: 'oauth_client_credentials', tokenMode: 'per_user' }), 'validation_failed');
      assert.deepEqual(Object.keys(fieldsOf(fixed)).sort(), ['authType', 'provider', 'tokenMode']);
      const badConfig = await rejectsWith(connectors.update(ACTOR, tenantA, created.id, { config: { tokenUrl: null } }), 'validation_failed');
      assert.match(fieldsOf(badConfig)['config.tokenUrl'] ?? '', /required/);
      const view = await connectors.get(tenantA, created.id);
      assert.equal(view.revision, 3, 'refused updates change nothing');
      assert.ok(!JSON.stringify(view).includes(second));
      const audit = await createAuditLog({ db: f.handle.db }).list(tenantA, { action: 'connector.updated' });
      assert.equal(audit.items.length, 2);
      assert.ok(!JSON.stringify(audit).includes(second) && !JSON.stringify(audit).includes(first));

      await connectors.delete(ACTOR, tenantA, created.id);
      await rejectsWith(connectors.get(tenantA, created.id), 'not_found');
      await rejectsWith(connectors.delete(ACTOR, tenantA, created.id), 'not_found');
    } finally {
      await f.dispose();
    }
  });

  it('keeps decrypted connectors per process: a change shows at once where it was made, elsewhere once the bus says so', async () => {
    const f = await createStoreFixture(dialect, [CONNECTOR_TYPE]);
    const other = f.peer({});
    const busA = new InvalidationBus({ handle: f.handle });
    const busB = new InvalidationBus({ handle: other.handle });
    try {
      await busA.start();
      // B is polled by hand below (not started: no timer, no LISTEN), so what it knows is what the test let it hear.
      const a = createConnectorService({ store: f.store, catalog, audit: createAuditLog({ db: f.handle.db }), bus: busA });
      const b = createConnectorService({ store: other.store, catalog, bus: busB });
      const tenant = `ten_${randomBytes(6).toString('hex')}`;
      const first = secret();
      const created = await a.create(ACTOR, tenant, {
        name: 'Cached',
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        config: { clientId: 'client-1', authorizationUrl: 'https://as.example.com/authorize', tokenUrl: 'https://as.example.com/token' },
        secrets: { clientSecret: first },
      });
      assert.equal((await a.getResolved(tenant, created.id)).clientSecret, first);
      assert.equal((await b.getResolved(tenant, created.id)).clientSecret, first);
      const shared = await a.getResolved(tenant, created.id);
      assert.throws(() => {
        (shared as { template: unknown }).template = null;
      }, TypeError, 'a cached connector is shared by every caller: frozen');

      const second = secret();
      await a.update(ACTOR, tenant, created.id, { secrets: { clientSecret: second } });
      assert.equal((await a.getResolved(tenant, created.id)).clientSecret, second, 'at once in the process that changed it');
      assert.equal((await b.getResolved(tenant, created.id)).clientSecret, first, 'the other process still answers from its cache');
      await busB.poll();
      assert.equal((await b.getResolved(tenant, created.id)).clientSecret, second, 'until its bus hears of the change');

      await a.delete(ACTOR, tenant, created.id);
      await rejectsWith(a.getResolved(tenant, created.id), 'not_found');
      await busB.poll();
      await rejectsWith(b.getResolved(tenant, created.id), 'not_found');
      await rejectsWith(b.getResolved(`${tenant}x`, created.id), 'not_found');
    } finally {
      await busA.stop();
      await busB.stop();
      await f.dispose();
    }
  });

  it('answers not_found for another tenant\'s connector, whatever the operation', async () => {
    const { f, connectors, tenantA, tenantB } = await fixture(dialect);
    try {
      const created = await connectors.create(ACTOR, tenantA, { name: 'Stripe', provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: secret() } });
      const other = await rejectsWith(connectors.get(tenantB, created.id), 'not_found');
      const unknown = await rejectsWith(connectors.get(tenantB, 'connector_doesnotexist'), 'not_found');
      assert.equal(other.message.replace(created.id, 'X'), unknown.message.replace('connector_doesnotexist', 'X'), 'the same answer as for an unknown id');
      await rejectsWith(connectors.getResolved(tenantB, created.id), 'not_found');
      await rejectsWith(connectors.update(ACTOR, tenantB, created.id, { name: 'mine' }), 'not_found');
      await rejectsWith(connectors.delete(ACTOR, tenantB, created.id), 'not_found');
      await rejectsWith(connectors.get(tenantA, "x' or 1=1 --"), 'not_found');
      assert.equal((await connectors.list(tenantB)).items.length, 0);
      assert.equal((await connectors.get(tenantA, created.id)).name, 'Stripe', 'still there, unchanged');
    } finally {
      await f.dispose();
    }
  });

  it('binds the secrets to provider and auth type: a row edited to another provider fails to decrypt', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const created = await connectors.create(ACTOR, tenantA, { name: 'GH', provider: 'github', authType: 'bearer', secrets: { token: secret() } });
      const row = await f.handle.db.selectFrom('objects').select('attributes').where('id', '=', created.id).executeTakeFirstOrThrow();
      const edited = { ...JSON.parse(row.attributes), provider: 'gitlab' };
      await f.handle.db.updateTable('objects').set({ attributes: JSON.stringify(edited) }).where('id', '=', created.id).execute();
      await rejectsWith(connectors.getResolved(tenantA, created.id), 'decryption_failed');
    } finally {
      await f.dispose();
    }
  });
  it('a plain-http OAuth server on loopback is refused at create and update without the insecure-loopback opt-in (400 naming the field)', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const local = 'http://127.0.0.1:9';
      const oauth2 = (config: Record<string, string>) => ({
        name: 'Local',
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        config: { clientId: 'c', authorizationUrl: 'https://as.example.com/authorize', tokenUrl: 'https://as.example.com/token', ...config },
        secrets: { clientSecret: secret() },
      });
      for (const [input, path] of [
        [oauth2({ tokenUrl: `${local}/token` }), 'config.tokenUrl'],
        [oauth2({ authorizationUrl: `${local}/authorize` }), 'config.authorizationUrl'],
        [oauth2({ revocationUrl: `${local}/revoke` }), 'config.revocationUrl'],
        [{ name: 'Local', provider: 'oidc', authType: 'oauth_authorization_code', config: { clientId: 'c', issuer: local }, secrets: { clientSecret: secret() } }, 'config.issuer'],
      ] as const) {
        const err = await rejectsWith(connectors.create(ACTOR, tenantA, input), 'validation_failed');
        assert.match(fieldsOf(err)[path] ?? `(no error on ${path})`, /plain http.*--allow-insecure-loopback/, path);
        assert.match(err.message, new RegExp(`"${path.replace('.', '\\.')}"`));
      }
      const created = await connectors.create(ACTOR, tenantA, oauth2({}));
      const err = await rejectsWith(connectors.update(ACTOR, tenantA, created.id, { config: { tokenUrl: `${local}/token` } }), 'validation_failed');
      assert.match(fieldsOf(err)['config.tokenUrl'] ?? '', /--allow-insecure-loopback/);
      assert.equal((await connectors.get(tenantA, created.id)).config.tokenUrl, 'https://as.example.com/token');

      // With the opt-in: loopback over http is accepted (127.0.0.0/8 included), any other host still refused.
      const insecure = createConnectorService({ store: f.store, catalog, allowInsecureLoopback: true });
      const accepted = await insecure.create(ACTOR, tenantA, oauth2({ tokenUrl: 'http://127.0.0.2:9/token' }));
      assert.equal(accepted.config.tokenUrl, 'http://127.0.0.2:9/token');
      assert.equal((await insecure.update(ACTOR, tenantA, created.id, { config: { tokenUrl: `${local}/token` } })).config.tokenUrl, `${local}/token`);
      const remote = await rejectsWith(insecure.create(ACTOR, tenantA, oauth2({ tokenUrl: 'http://10.0.0.1/token' })), 'validation_failed');
      assert.match(fieldsOf(remote)['config.tokenUrl'] ?? '', /https/);
    } finally {
      await f.dispose();
    }
  });

  it('takes scopes as a list as well as a space-separated string, on create and update', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const base = { name: 'Generic', provider: 'oauth2', authType: 'oauth_authorization_code', secrets: { clientSecret: secret() } };
      const config = { clientId: 'c', authorizationUrl: 'https://as.example.com/authorize', tokenUrl: 'https://as.example.com/token' };
      const created = await connectors.create(ACTOR, tenantA, { ...base, config: { ...config, scopes: ['openid', 'offline_access', 'api:read'] } });
      assert.equal(created.config.scopes, 'openid offline_access api:read');
      assert.deepEqual((await connectors.getResolved(tenantA, created.id)).provider.oauth?.scopes, ['openid', 'offline_access', 'api:read']);
      const updated = await connectors.update(ACTOR, tenantA, created.id, { config: { scopes: ['api:write'] } });
      assert.equal(updated.config.scopes, 'api:write');
      assert.equal((await connectors.create(ACTOR, tenantA, { ...base, config: { ...config, scopes: 'a b' } })).config.scopes, 'a b');
      for (const bad of [[], [1], ['two words'], 'a "b"']) {
        const err = await rejectsWith(connectors.create(ACTOR, tenantA, { ...base, config: { ...config, scopes: bad } }), 'validation_failed');
        assert.ok(fieldsOf(err)['config.scopes'], JSON.stringify(bad));
      }
      const listed = await rejectsWith(connectors.create(ACTOR, tenantA, { ...base, config: { ...config, clientId: ['c'] } }), 'validation_failed');
      assert.equal(fieldsOf(listed)['config.clientId'], 'must be a string', 'only scopes take a list');
    } finally {
      await f.dispose();
    }
  });

  it('a connector whose secrets cannot be decrypted is repaired by PATCHing new secrets', async () => {
    const { f, connectors, tenantA } = await fixture(dialect);
    try {
      const input = (name: string) => ({
        name,
        provider: 'oauth2',
        authType: 'oauth_authorization_code',
        config: { clientId: 'c', authorizationUrl: 'https://as.example.com/authorize', tokenUrl: 'https://as.example.com/token' },
        secrets: { clientSecret: secret() },
      });
      const broken = await connectors.create(ACTOR, tenantA, input('Broken'));
      const other = await connectors.create(ACTOR, tenantA, input('Other'));
      // Damage the ciphertext: another object's (its AAD names the other id, so it cannot open here).
      const donor = await f.handle.db.selectFrom('objects').select('secrets').where('id', '=', other.id).executeTakeFirstOrThrow();
      await f.handle.db.updateTable('objects').set({ secrets: donor.secrets }).where('id', '=', broken.id).execute();
      await rejectsWith(connectors.getResolved(tenantA, broken.id), 'decryption_failed');

      const renameOnly = await rejectsWith(connectors.update(ACTOR, tenantA, broken.id, { name: 'Renamed' }), 'validation_failed');
      assert.match(fieldsOf(renameOnly)['secrets.clientSecret'] ?? '', /cannot be decrypted/);
      const fresh = secret();
      const repaired = await connectors.update(ACTOR, tenantA, broken.id, { name: 'Repaired', secrets: { clientSecret: fresh } });
      assert.equal(repaired.name, 'Repaired');
      assert.deepEqual(repaired.secrets, { clientSecret: { set: true } });
      assert.equal((await connectors.getResolved(tenantA, broken.id)).clientSecret, fresh);
      assert.equal((await connectors.get(tenantA, broken.id)).config.clientId, 'c', 'the plain attributes are kept');
    } finally {
      await f.dispose();
    }
  });
});
