import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { ConfigError, LatchkeyError } from '../core/index.js';
import {
  BUNDLED_PROVIDERS,
  isOAuthAuthType,
  loadCatalog,
  parseProviderTemplate,
  resolveProvider,
  validateConnectorConfig,
} from './index.js';
import type { ConfigFieldError, ProviderTemplate, ResolvedOAuth, ResolvedOAuthEndpoints } from './index.js';

const PROVIDERS_DIR = new URL('./providers/', import.meta.url);
const GENERIC = ['oauth2', 'oidc', 'http'];
const REQUIRED = ['microsoft', 'google', 'github', 'slack', 'notion', 'atlassian', 'salesforce', 'hubspot', 'dropbox', 'zoom', 'linear', 'asana'];
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const catalog = loadCatalog();

function provider(id: string): ProviderTemplate {
  const template = catalog.get(id);
  assert.ok(template, `provider ${id} is in the catalog`);
  return template;
}

function endpoints(oauth: ResolvedOAuth | undefined): ResolvedOAuthEndpoints {
  assert.ok(oauth && oauth.discovery === undefined, 'resolved OAuth with endpoints');
  return oauth;
}

/** A small valid template to break one field at a time. */
function acme(): Record<string, unknown> & { oauth: Record<string, unknown>; config: Record<string, unknown> } {
  return {
    id: 'acme',
    name: 'Acme',
    docsUrl: 'https://acme.example/docs',
    authTypes: ['oauth_authorization_code'],
    oauth: {
      authorizationUrl: 'https://acme.example/oauth/authorize',
      tokenUrl: 'https://acme.example/oauth/token',
      scopes: { default: ['read'], separator: ' ' },
      clientAuthentication: 'client_secret_basic',
      pkce: true,
    },
    apiBaseUrl: 'https://api.acme.example',
    config: { clientId: { type: 'string', required: true, description: 'The client id.' } },
  };
}

/** The field errors of a provider file that must not parse. */
function fileErrors(data: unknown, file = 'acme.json'): ConfigFieldError[] {
  try {
    parseProviderTemplate(data, file);
  } catch (error) {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, 'invalid_config');
    assert.match(error.message, new RegExp(`^Provider file "${file.replace('.', '\\.')}" is invalid: `));
    return error.details?.fields as ConfigFieldError[];
  }
  assert.fail('the template parsed');
}

function assertFileError(data: unknown, path: string, message: RegExp): void {
  assertFileErrorIn(data, 'acme.json', path, message);
}

function assertFileErrorIn(data: unknown, file: string, path: string, message: RegExp): void {
  const fields = fileErrors(data, file);
  assert.ok(
    fields.some((field) => field.path === path && message.test(field.message)),
    `expected "${path}" ${message}, got ${JSON.stringify(fields)}`,
  );
}

/** The field errors of a config that must not validate. */
function configErrors(template: ProviderTemplate, authType: string, config: unknown, allowInsecureLoopback?: boolean): ConfigFieldError[] {
  const result = validateConnectorConfig(template, authType, config, allowInsecureLoopback === undefined ? {} : { allowInsecureLoopback });
  assert.equal(result.ok, false, 'the config validated');
  return result.ok ? [] : result.fields;
}

function assertConfigRefused(run: () => unknown, path: string, message: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof LatchkeyError);
    assert.equal(error.code, 'validation_failed');
    const fields = error.details?.fields as ConfigFieldError[];
    assert.equal(fields[0]?.path, path);
    assert.match(fields[0]?.message ?? '', message);
    return true;
  });
}

describe('provider files', () => {
  const files = readdirSync(PROVIDERS_DIR).sort();

  it('holds only .json files', () => {
    assert.deepEqual(files.filter((file) => !file.endsWith('.json')), []);
  });

  for (const file of files.filter((name) => name.endsWith('.json'))) {
    it(`${file} validates against the provider schema`, () => {
      const data: unknown = JSON.parse(readFileSync(new URL(file, PROVIDERS_DIR), 'utf8'));
      const template = parseProviderTemplate(data, file);
      assert.equal(`${template.id}.json`, file);
    });
  }

  it('are all bundled in the catalog (a file missing from catalog.ts fails here)', () => {
    const ids = files.map((file) => file.replace(/\.json$/, ''));
    assert.deepEqual(catalog.list().map((template) => template.id), ids);
    assert.deepEqual(BUNDLED_PROVIDERS.map((source) => source.file).sort(), files);
  });
});

describe('catalog', () => {
  it('has at least 20 real providers besides the generic ones', () => {
    const real = catalog.list().filter((template) => !GENERIC.includes(template.id));
    assert.ok(real.length >= 20, `${real.length} real providers`);
  });

  it('has the required providers and the generic ones', () => {
    for (const id of [...REQUIRED, ...GENERIC]) assert.ok(catalog.get(id), id);
  });

  it('lists templates sorted by id and answers undefined for an unknown id', () => {
    const ids = catalog.list().map((template) => template.id);
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(catalog.get('nope'), undefined);
  });

  it('declares a required clientId on every OAuth provider and never a secret in config', () => {
    for (const template of catalog.list()) {
      if (template.authTypes.some(isOAuthAuthType)) assert.equal(template.config.clientId?.required, true, template.id);
      assert.equal(Object.keys(template.config).some((name) => /secret|password/i.test(name)), false, template.id);
    }
  });

  it('uses https for every static URL', () => {
    for (const template of catalog.list()) {
      const urls = [template.docsUrl, template.apiBaseUrl, template.oauth?.authorizationUrl, template.oauth?.tokenUrl, template.oauth?.revocationUrl];
      for (const url of urls) if (url && !url.startsWith('{')) assert.match(url, /^https:\/\//, `${template.id}: ${url}`);
    }
  });

  it('freezes templates', () => {
    const template = provider('github');
    assert.ok(Object.isFrozen(template) && Object.isFrozen(template.oauth) && Object.isFrozen(template.config.clientId));
    assert.throws(() => {
      (template as { apiBaseUrl: string }).apiBaseUrl = 'https://evil.example';
    }, TypeError);
  });

  it('loads extra provider sources and names the bad file', () => {
    const extended = loadCatalog([...BUNDLED_PROVIDERS, { file: 'acme.json', data: acme() }]);
    assert.equal(extended.list().length, catalog.list().length + 1);
    const bad = { ...acme(), docsUrl: 'http://acme.example' };
    assert.throws(() => loadCatalog([{ file: 'acme.json', data: bad }]), /^ConfigError: Provider file "acme\.json" is invalid: "docsUrl" must be an https URL\.$/);
  });

  it('refuses an id that is not the file name, and a duplicate id', () => {
    assertFileErrorIn(acme(), 'other.json', 'id', /^must be "other", the file's name without "\.json"$/);
    assert.throws(
      () => loadCatalog([{ file: 'acme.json', data: acme() }, { file: 'dir/acme.json', data: acme() }]),
      /Provider file "dir\/acme\.json" is invalid: "id" acme is already in the catalog\./,
    );
  });

  it('names the field of a file that is not a template at all', () => {
    assertFileError('not an object', '', /expected object/);
    assertFileError({ ...acme(), name: 42 }, 'name', /expected string/);
    assertFileError({ ...acme(), extra: true }, '', /extra/);
    assertFileError({ ...acme(), authTypes: ['oauth_authorization_code', 'magic'] }, 'authTypes.1', /Invalid option/);
  });
});

describe('provider schema refinements', () => {
  it('refuses a placeholder declared neither in config nor in tokenResponseFields', () => {
    const data = acme();
    data.oauth.tokenUrl = 'https://acme.example/{region}/token';
    assertFileError(data, 'oauth.tokenUrl', /^uses \{region\}, which is declared neither in "config" nor in "tokenResponseFields"$/);
    data.config.region = { type: 'string', required: true, description: 'Region.', pattern: '^[a-z]+$' };
    assert.equal(parseProviderTemplate(data, 'acme.json').oauth?.tokenUrl, 'https://acme.example/{region}/token');
  });

  it('refuses a token response field, or an optional field without default, in an authorization or token URL', () => {
    const fromToken = { ...acme(), tokenResponseFields: ['instance_url'] };
    fromToken.oauth.authorizationUrl = '{instance_url}/authorize';
    assertFileError(fromToken, 'oauth.authorizationUrl', /from the token response, which is not known before the first token/);
    const optional = acme();
    optional.config.region = { type: 'string', required: false, description: 'Region.' };
    optional.oauth.tokenUrl = 'https://acme.example/{region}/token';
    assertFileError(optional, 'oauth.tokenUrl', /an optional config field without a default/);
  });

  it('lets an end user give only a patterned string field, never the client id or scopes', () => {
    const data = acme();
    data.oauth.tokenUrl = 'https://{tenant}.acme.example/token';
    data.config.tenant = { type: 'string', required: true, description: 'The account.', pattern: '^[a-z]+$', endUser: true };
    const template = parseProviderTemplate(data, 'acme.json');
    assert.equal(template.config.tenant?.endUser, true);
    const url = acme();
    url.config.base = { type: 'url', required: false, description: 'Where.', endUser: true };
    assertFileError(url, 'config.base.endUser', /needs a "string" field with a pattern/);
    const unpatterned = acme();
    unpatterned.config.tenant = { type: 'string', required: true, description: 'The account.', endUser: true };
    assertFileError(unpatterned, 'config.tenant.endUser', /with a pattern/);
    const client = acme();
    client.config.clientId = { type: 'string', required: true, description: 'The client id.', pattern: '^.+$', endUser: true };
    assertFileError(client, 'config.clientId.endUser', /application chooses them/);
  });

  it('allows a token response field in the API base URL', () => {
    const data = { ...acme(), apiBaseUrl: '{instance_url}/api', tokenResponseFields: ['instance_url'] };
    assert.equal(parseProviderTemplate(data, 'acme.json').apiBaseUrl, '{instance_url}/api');
  });

  it('refuses malformed templates', () => {
    const cases: Array<[string, RegExp]> = [
      ['https://acme.example/{tenant', /without a matching "}"/],
      ['https://acme.example/tenant}', /without a matching "{"/],
      ['https://acme.example/{ten-ant}', /whose name is not letters/],
      ['https://acme.example/x#{clientId}', /in its fragment/],
    ];
    for (const [url, message] of cases) {
      const data = acme();
      data.oauth.tokenUrl = url;
      assertFileError(data, 'oauth.tokenUrl', message);
    }
  });

  it('requires a url field where a placeholder starts a URL, and a pattern on a host placeholder', () => {
    const start = acme();
    start.config.base = { type: 'string', required: true, description: 'Base.' };
    start.apiBaseUrl = '{base}/v1';
    assertFileError(start, 'apiBaseUrl', /must be a "url" field/);
    const inside = acme();
    inside.config.base = { type: 'url', required: true, description: 'Base.' };
    inside.apiBaseUrl = 'https://acme.example/{base}';
    assertFileError(inside, 'apiBaseUrl', /url fields can only start a URL/);
    const host = acme();
    host.config.shop = { type: 'string', required: true, description: 'Shop.' };
    host.apiBaseUrl = 'https://{shop}.acme.example';
    assertFileError(host, 'apiBaseUrl', /needs a pattern/);
  });

  describe('https rule', () => {
    const urlFields: Array<[string, (data: ReturnType<typeof acme>, url: string) => void]> = [
      ['docsUrl', (data, url) => (data.docsUrl = url)],
      ['apiBaseUrl', (data, url) => (data.apiBaseUrl = url)],
      ['oauth.authorizationUrl', (data, url) => (data.oauth.authorizationUrl = url)],
      ['oauth.tokenUrl', (data, url) => (data.oauth.tokenUrl = url)],
      ['oauth.revocationUrl', (data, url) => (data.oauth.revocationUrl = url)],
    ];
    for (const [path, set] of urlFields) {
      it(`refuses http, a loopback http URL, credentials and fragments in ${path}`, () => {
        for (const url of ['http://acme.example/x', 'http://127.0.0.1/x', 'ftp://acme.example/x', 'https://user:pw@acme.example/x', 'https://acme.example/x#y', 'acme.example/x']) {
          const data = acme();
          set(data, url);
          // A generic provider's opt-in covers values from config, never URLs written in the template.
          data.allowLoopbackHttp = true;
          assert.ok(fileErrors(data).some((field) => field.path === path), `${path} = ${url}`);
        }
      });
    }

    it('refuses an http issuer and an http default for a url field', () => {
      const data = acme();
      data.oauth = { ...data.oauth, authorizationUrl: undefined, tokenUrl: undefined, discovery: 'oidc', issuer: 'http://idp.example' };
      assertFileError(data, 'oauth.issuer', /^must start with "https:\/\/" or with a placeholder$/);
      const withDefault = acme();
      withDefault.config.base = { type: 'url', required: false, default: 'http://acme.example', description: 'Base.' };
      assertFileError(withDefault, 'config.base.default', /^must be an https URL$/);
    });

    it('lets a generic provider take http only on a loopback host from config', () => {
      const oauth2 = provider('oauth2');
      for (const url of ['http://127.0.0.1:8080/authorize', 'http://localhost/authorize', 'http://[::1]:9000/authorize']) {
        const result = validateConnectorConfig(oauth2, 'oauth_authorization_code', { authorizationUrl: url, tokenUrl: 'https://idp.example/token', clientId: 'c' });
        assert.equal(result.ok, true, url);
      }
      for (const url of ['http://idp.example/authorize', 'http://10.0.0.1/authorize', 'http://127.0.0.1.nip.io/authorize', 'file:///etc/passwd']) {
        const fields = configErrors(oauth2, 'oauth_authorization_code', { authorizationUrl: url, tokenUrl: 'https://idp.example/token', clientId: 'c' });
        assert.deepEqual(fields, [{ path: 'config.authorizationUrl', message: 'must be an https URL (http only for localhost, 127.0.0.0/8 or [::1])' }], url);
      }
    });

    it('refuses an http instance_url from Salesforce, even on loopback', () => {
      const salesforce = provider('salesforce');
      for (const url of ['http://acme.my.salesforce.com', 'http://127.0.0.1']) {
        assert.throws(
          () => resolveProvider(salesforce, { clientId: 'c' }, { instance_url: url }),
          (error: unknown) => error instanceof LatchkeyError && error.code === 'internal_error' && /"instance_url" must be an https URL\.$/.test(error.message),
        );
      }
    });
  });

  it('ties the oauth block to OAuth auth types and apiKey to api_key', () => {
    assertFileError({ ...acme(), authTypes: ['bearer'] }, 'oauth', /only allowed with an oauth_\* auth type/);
    const noOAuth: Record<string, unknown> = { ...acme(), oauth: undefined };
    assertFileError(noOAuth, 'oauth', /is required for oauth_authorization_code/);
    assertFileError({ ...acme(), authTypes: ['oauth_authorization_code', 'api_key'] }, 'apiKey', /required for the api_key auth type/);
    assertFileError({ ...acme(), apiKey: { in: 'header', name: 'X-Key' } }, 'apiKey', /only allowed with the api_key auth type/);
    assertFileError({ ...acme(), authTypes: ['oauth_authorization_code', 'oauth_authorization_code'] }, 'authTypes', /must not repeat/);
  });

  it('requires clientId on OAuth providers, for exactly the OAuth auth types', () => {
    assertFileError({ ...acme(), config: {} }, 'config.clientId', /must be a required string field/);
    const optional = acme();
    optional.config.clientId = { type: 'string', required: false, description: 'Id.' };
    assertFileError(optional, 'config.clientId', /must be a required string field/);
    assertFileError({ ...acme(), authTypes: ['oauth_authorization_code', 'bearer'] }, 'config.clientId.authTypes', /exactly the OAuth auth types/);
  });

  it('refuses secrets in config', () => {
    for (const name of ['clientSecret', 'password', 'apiKey', 'refresh_token']) {
      const data = acme();
      data.config[name] = { type: 'string', required: false, description: 'A secret.' };
      assertFileError(data, `config.${name}`, /names a secret/);
    }
  });

  it('refuses bad patterns and defaults', () => {
    const unanchored = acme();
    unanchored.config.region = { type: 'string', required: false, description: 'Region.', pattern: '[a-z]+' };
    assertFileError(unanchored, 'config.region.pattern', /anchored/);
    const broken = acme();
    broken.config.region = { type: 'string', required: false, description: 'Region.', pattern: '^([a-z]$' };
    assertFileError(broken, 'config.region.pattern', /not a valid regular expression/);
    const mismatch = acme();
    mismatch.config.region = { type: 'string', required: false, description: 'Region.', pattern: '^[a-z]+$', default: 'EU' };
    assertFileError(mismatch, 'config.region.default', /must match the pattern/);
    const both = acme();
    both.config.region = { type: 'string', required: true, description: 'Region.', default: 'eu' };
    assertFileError(both, 'config.region.default', /not allowed on a required field/);
  });

  it('refuses parameters the OAuth client sets itself, and scopes holding the separator', () => {
    const authorization = acme();
    authorization.oauth.authorizationParams = { redirect_uri: 'https://evil.example' };
    assertFileError(authorization, 'oauth.authorizationParams.redirect_uri', /cannot be overridden/);
    const token = acme();
    token.oauth.tokenParams = { grant_type: 'password' };
    assertFileError(token, 'oauth.tokenParams.grant_type', /cannot be overridden/);
    const scopes = acme();
    scopes.oauth.scopes = { default: ['read,write'], separator: ',' };
    assertFileError(scopes, 'oauth.scopes.default', /must not contain the separator/);
  });

  it('requires an issuer and no endpoints with OIDC discovery', () => {
    const data = acme();
    data.oauth.discovery = 'oidc';
    assertFileError(data, 'oauth.issuer', /required with discovery "oidc"/);
    assertFileError(data, 'oauth.tokenUrl', /not allowed with discovery "oidc"/);
  });
});

describe('resolveProvider: Microsoft', () => {
  const microsoft = provider('microsoft');

  it('puts the tenant id into the authorization and token URLs', () => {
    for (const tenantId of [TENANT, 'contoso.onmicrosoft.com', 'organizations']) {
      const oauth = endpoints(resolveProvider(microsoft, { tenantId, clientId: 'c' }).oauth);
      assert.equal(oauth.authorizationUrl, `https://login.microsoftonline.com/${tenantId}/oauth2/v2.0/authorize`);
      assert.equal(oauth.tokenUrl, `https://login.microsoftonline.com/${tenantId}/oauth2/v2.0/token`);
      assert.equal(oauth.revocationUrl, undefined);
    }
  });

  it('defaults to offline_access plus Graph .default, and .default alone for client credentials', () => {
    const resolved = resolveProvider(microsoft, { tenantId: TENANT, clientId: 'c' });
    const oauth = endpoints(resolved.oauth);
    assert.deepEqual(oauth.scopes, ['offline_access', 'https://graph.microsoft.com/.default']);
    assert.deepEqual(oauth.clientCredentialsScopes, ['https://graph.microsoft.com/.default']);
    assert.equal(oauth.scopeSeparator, ' ');
    assert.equal(oauth.clientAuthentication, 'client_secret_post');
    assert.equal(oauth.pkce, true);
    assert.equal(resolved.apiBaseUrl, 'https://graph.microsoft.com/v1.0');
  });

  it('takes scopes from config', () => {
    const oauth = endpoints(resolveProvider(microsoft, { tenantId: TENANT, clientId: 'c', scopes: 'offline_access  Sites.Read.All' }).oauth);
    assert.deepEqual(oauth.scopes, ['offline_access', 'Sites.Read.All']);
    assert.deepEqual(oauth.clientCredentialsScopes, ['offline_access', 'Sites.Read.All']);
  });

  it('refuses a tenant id with a slash or other path characters', () => {
    const bad = [`${TENANT}/../common`, 'contoso/evil', '..', '.', 'a?b=c', 'a#b', 'a%2Fb', 'a\\b', 'con toso', 'contoso.onmicrosoft.com/', '', `${TENANT}\n`];
    for (const tenantId of bad) {
      assertConfigRefused(() => resolveProvider(microsoft, { tenantId, clientId: 'c' }), 'config.tenantId', /^(?:is not in the form it takes|must (?:not be empty|not contain control))/);
      const fields = configErrors(microsoft, 'oauth_authorization_code', { tenantId, clientId: 'c' });
      assert.equal(fields[0]?.path, 'config.tenantId', JSON.stringify(tenantId));
    }
  });

  it('refuses to resolve without a tenant id', () => {
    assertConfigRefused(() => resolveProvider(microsoft, { clientId: 'c' }), 'config.tenantId', /^is required$/);
  });
});

describe('resolveProvider: placeholders', () => {
  it('takes the Salesforce API base URL from instance_url in the token response', () => {
    const salesforce = provider('salesforce');
    const before = resolveProvider(salesforce, { clientId: 'c' });
    assert.equal(before.apiBaseUrl, undefined);
    assert.equal(endpoints(before.oauth).tokenUrl, 'https://login.salesforce.com/services/oauth2/token');
    const after = resolveProvider(salesforce, { clientId: 'c' }, { access_token: 'x', instance_url: 'https://acme.my.salesforce.com' });
    assert.equal(after.apiBaseUrl, 'https://acme.my.salesforce.com');
    assert.throws(() => resolveProvider(salesforce, { clientId: 'c' }, { access_token: 'x' }), /"instance_url" is missing\.$/);
    assert.throws(() => resolveProvider(salesforce, { clientId: 'c' }, { instance_url: 42 }), /"instance_url" must be a non-empty string\.$/);
  });

  it('fills the Salesforce login host from its default or a sandbox, and refuses a foreign host', () => {
    const salesforce = provider('salesforce');
    const sandbox = endpoints(resolveProvider(salesforce, { clientId: 'c', loginHost: 'test.salesforce.com' }).oauth);
    assert.equal(sandbox.authorizationUrl, 'https://test.salesforce.com/services/oauth2/authorize');
    assert.equal(sandbox.revocationUrl, 'https://test.salesforce.com/services/oauth2/revoke');
    assertConfigRefused(() => resolveProvider(salesforce, { clientId: 'c', loginHost: 'evil.example' }), 'config.loginHost', /^is not in the form it takes \(login\.salesforce\.com/);
  });

  it('appends a path to a token response URL without doubling the slash', () => {
    const template = parseProviderTemplate({ ...acme(), apiBaseUrl: '{instance_url}/api', tokenResponseFields: ['instance_url'] }, 'acme.json');
    assert.equal(resolveProvider(template, { clientId: 'c' }, { instance_url: 'https://x.acme.example/' }).apiBaseUrl, 'https://x.acme.example/api');
    assert.throws(() => resolveProvider(template, { clientId: 'c' }, { instance_url: 'https://x.acme.example/?a=b' }), /must not have a query/);
  });

  it('fills a host placeholder only with a host name (Shopify, Zendesk)', () => {
    const shopify = endpoints(resolveProvider(provider('shopify'), { shop: 'acme', clientId: 'c' }).oauth);
    assert.equal(shopify.authorizationUrl, 'https://acme.myshopify.com/admin/oauth/authorize');
    assert.equal(resolveProvider(provider('zendesk'), { subdomain: 'acme', clientId: 'c' }).apiBaseUrl, 'https://acme.zendesk.com/api/v2');
    for (const shop of ['evil.example/x', 'evil.example#', 'a@evil.example', 'Acme']) {
      assertConfigRefused(() => resolveProvider(provider('shopify'), { shop, clientId: 'c' }), 'config.shop', /^is not in the form it takes \(The shop's subdomain/);
    }
  });

  it('fills a path placeholder percent-encoded (Twilio)', () => {
    const sid = `AC${'0123456789abcdef'.repeat(2)}`;
    assert.equal(resolveProvider(provider('twilio'), { accountSid: sid }).apiBaseUrl, `https://api.twilio.com/2010-04-01/Accounts/${sid}`);
    assertConfigRefused(() => resolveProvider(provider('twilio'), {}), 'config.accountSid', /^is required$/);
  });

  it('percent-encodes a path placeholder without a pattern, and refuses path characters in it', () => {
    const data = acme();
    data.config.team = { type: 'string', required: true, description: 'Team.' };
    data.apiBaseUrl = 'https://api.acme.example/teams/{team}?view={team}';
    const template = parseProviderTemplate(data, 'acme.json');
    assert.equal(resolveProvider(template, { clientId: 'c', team: 'a b+é' }).apiBaseUrl, 'https://api.acme.example/teams/a%20b%2B%C3%A9?view=a%20b%2B%C3%A9');
    for (const team of ['a/b', '..', 'a%2F', 'a?b', 'a\\b']) {
      assertConfigRefused(() => resolveProvider(template, { clientId: 'c', team }), 'config.team', /single path segment/);
    }
  });

  it('resolves Jira once the cloud id is set, and leaves the API base unknown before', () => {
    const jira = provider('jira');
    assert.equal(resolveProvider(jira, { clientId: 'c' }).apiBaseUrl, undefined);
    const cloudId = '11223344-aabb-ccdd-eeff-001122334455';
    assert.equal(resolveProvider(jira, { clientId: 'c', cloudId }).apiBaseUrl, `https://api.atlassian.com/ex/jira/${cloudId}`);
    assert.deepEqual(endpoints(resolveProvider(jira, { clientId: 'c' }).oauth).authorizationParams, { audience: 'api.atlassian.com', prompt: 'consent' });
  });

  it('resolves a provider without OAuth (Stripe)', () => {
    const stripe = resolveProvider(provider('stripe'), {});
    assert.deepEqual(stripe, {
      provider: 'stripe',
      apiBaseUrl: 'https://api.stripe.com/v1',
      apiKey: { in: 'header', name: 'Authorization', prefix: 'Bearer ' },
      oauth: undefined,
    });
  });

  it('refuses a template that did not come from the catalog', () => {
    const forged = structuredClone(provider('github'));
    assert.throws(() => resolveProvider(forged, {}), TypeError);
    assert.throws(() => validateConnectorConfig(forged, 'bearer', {}), TypeError);
  });
});

describe('resolveProvider: generic providers', () => {
  it('resolves oauth2 endpoints, scopes and API base from config', () => {
    const oauth2 = provider('oauth2');
    const config = {
      authorizationUrl: 'https://idp.example/oauth/authorize?audience=api',
      tokenUrl: 'https://idp.example/oauth/token',
      revocationUrl: 'https://idp.example/oauth/revoke',
      apiBaseUrl: 'https://api.example/v2',
      clientId: 'client-1',
      scopes: 'read write',
    };
    const resolved = resolveProvider(oauth2, config);
    const oauth = endpoints(resolved.oauth);
    assert.equal(oauth.authorizationUrl, config.authorizationUrl);
    assert.equal(oauth.tokenUrl, config.tokenUrl);
    assert.equal(oauth.revocationUrl, config.revocationUrl);
    assert.deepEqual(oauth.scopes, ['read', 'write']);
    assert.equal(oauth.clientAuthentication, 'client_secret_basic');
    assert.equal(oauth.pkce, true);
    assert.equal(resolved.apiBaseUrl, 'https://api.example/v2');
  });

  it('leaves the optional oauth2 revocation URL and API base undefined, and defaults to no scopes', () => {
    const resolved = resolveProvider(provider('oauth2'), { authorizationUrl: 'http://127.0.0.1:4000/auth', tokenUrl: 'http://127.0.0.1:4000/token', clientId: 'c' });
    const oauth = endpoints(resolved.oauth);
    assert.equal(oauth.authorizationUrl, 'http://127.0.0.1:4000/auth');
    assert.equal(oauth.revocationUrl, undefined);
    assert.deepEqual(oauth.scopes, []);
    assert.equal(resolved.apiBaseUrl, undefined);
  });

  it('refuses oauth2 without a token URL, or with one on a foreign http host', () => {
    const oauth2 = provider('oauth2');
    assertConfigRefused(() => resolveProvider(oauth2, { authorizationUrl: 'https://idp.example/a', clientId: 'c' }), 'config.tokenUrl', /^is required$/);
    assertConfigRefused(
      () => resolveProvider(oauth2, { authorizationUrl: 'https://idp.example/a', tokenUrl: 'http://idp.example/t', clientId: 'c' }),
      'config.tokenUrl',
      /^must be an https URL/,
    );
  });

  it('resolves oidc to discovery from the issuer', () => {
    const oauth = resolveProvider(provider('oidc'), { issuer: 'https://idp.example/realms/acme', clientId: 'c' }).oauth;
    assert.ok(oauth?.discovery === 'oidc');
    assert.equal(oauth.issuer, 'https://idp.example/realms/acme');
    assert.deepEqual(oauth.scopes, ['openid']);
    assert.deepEqual(oauth.clientCredentialsScopes, []);
  });
});

describe('validateConnectorConfig', () => {
  it('accepts a valid config and applies defaults', () => {
    const result = validateConnectorConfig(provider('salesforce'), 'oauth_authorization_code', { clientId: 'c' });
    assert.deepEqual(result, { ok: true, config: { clientId: 'c', loginHost: 'login.salesforce.com' } });
  });

  it('reports every missing required field', () => {
    assert.deepEqual(configErrors(provider('microsoft'), 'oauth_authorization_code', {}), [
      { path: 'config.tenantId', message: 'is required' },
      { path: 'config.clientId', message: 'is required' },
    ]);
  });

  it('reports a pattern mismatch on the field', () => {
    assert.deepEqual(configErrors(provider('twilio'), 'basic', { accountSid: 'AC123' }), [
      { path: 'config.accountSid', message: 'is not in the form it takes (The Account SID (AC followed by 32 hex digits))' },
    ]);
  });

  it('reports an unknown field, and a secret put in config', () => {
    assert.deepEqual(configErrors(provider('github'), 'oauth_authorization_code', { clientId: 'c', region: 'eu', clientSecret: 's' }), [
      { path: 'config.region', message: 'is not a config field of GitHub' },
      { path: 'config.clientSecret', message: 'is a secret; it belongs in "secrets", never in "config"' },
    ]);
  });

  it('reports an auth type the provider does not support, and still checks the fields', () => {
    assert.deepEqual(configErrors(provider('stripe'), 'oauth_authorization_code', { region: 'eu' }), [
      { path: 'authType', message: 'must be one of api_key for Stripe' },
      { path: 'config.region', message: 'is not a config field of Stripe' },
    ]);
    assert.equal(configErrors(provider('github'), 'magic', { clientId: 'c' })[0]?.path, 'authType');
  });

  it('scopes fields to their auth types: no clientId needed, nor allowed, for a bearer token', () => {
    const github = provider('github');
    assert.deepEqual(validateConnectorConfig(github, 'bearer', {}), { ok: true, config: {} });
    assert.deepEqual(configErrors(github, 'bearer', { clientId: 'c' }), [{ path: 'config.clientId', message: 'does not apply to auth type bearer' }]);
  });

  it('reports values that are not non-empty strings, and a config that is not an object', () => {
    assert.deepEqual(configErrors(provider('shopify'), 'oauth_authorization_code', { shop: 42, clientId: '' }), [
      { path: 'config.shop', message: 'must be a string' },
      { path: 'config.clientId', message: 'must not be empty' },
    ]);
    assert.deepEqual(configErrors(provider('github'), 'bearer', ['x']), [{ path: 'config', message: 'must be an object' }]);
    assert.deepEqual(configErrors(provider('github'), 'bearer', null), [{ path: 'config', message: 'must be an object' }]);
  });

  it('checks scopes, accepting the provider separator', () => {
    const slack = provider('slack');
    assert.deepEqual(configErrors(slack, 'oauth_authorization_code', { clientId: 'c', scopes: 'chat:write "x"' }), [
      { path: 'config.scopes', message: 'must be scopes separated by spaces' },
    ]);
    const oauth = endpoints(resolveProvider(slack, { clientId: 'c', scopes: 'chat:write,users:read' }).oauth);
    assert.deepEqual(oauth.scopes, ['chat:write', 'users:read']);
    assert.equal(oauth.scopeSeparator, ',');
  });

  it('does not treat inherited names as fields', () => {
    const config = JSON.parse('{"__proto__": {"clientId": "x"}, "constructor": "y"}') as unknown;
    assert.deepEqual(configErrors(provider('github'), 'oauth_authorization_code', config), [
      { path: 'config.__proto__', message: 'is not a config field of GitHub' },
      { path: 'config.constructor', message: 'is not a config field of GitHub' },
      { path: 'config.clientId', message: 'is required' },
    ]);
  });
});

describe('the generic http provider', () => {
  const http = provider('http');
  const base = 'https://api.internal.example/v1';

  it('takes an API base URL and, for api_key, where the key goes; basic and bearer need only the URL', () => {
    assert.deepEqual(http.authTypes, ['api_key', 'basic', 'bearer']);
    assert.deepEqual(validateConnectorConfig(http, 'api_key', { apiBaseUrl: base, name: 'X-Api-Key' }), {
      ok: true,
      config: { apiBaseUrl: base, name: 'X-Api-Key', in: 'header' },
    });
    assert.deepEqual(validateConnectorConfig(http, 'api_key', { apiBaseUrl: base, in: 'query', name: 'api_key' }), {
      ok: true,
      config: { apiBaseUrl: base, in: 'query', name: 'api_key' },
    });
    for (const authType of ['basic', 'bearer']) {
      assert.deepEqual(validateConnectorConfig(http, authType, { apiBaseUrl: base }), { ok: true, config: { apiBaseUrl: base } });
      assert.deepEqual(configErrors(http, authType, { apiBaseUrl: base, name: 'X-Api-Key' }), [
        { path: 'config.name', message: `does not apply to auth type ${authType}` },
      ]);
    }
  });

  it('resolves the key placement from config, and none for basic and bearer connectors', () => {
    assert.deepEqual(resolveProvider(http, { apiBaseUrl: base, in: 'query', name: 'token' }), {
      provider: 'http',
      apiBaseUrl: base,
      apiKey: { in: 'query', name: 'token' },
      oauth: undefined,
    });
    assert.deepEqual(resolveProvider(http, { apiBaseUrl: base }), { provider: 'http', apiBaseUrl: base, apiKey: undefined, oauth: undefined });
  });

  it('requires the API base URL, an https one (http on loopback only), and the key name', () => {
    assert.deepEqual(configErrors(http, 'api_key', {}), [
      { path: 'config.apiBaseUrl', message: 'is required' },
      { path: 'config.name', message: 'is required' },
    ]);
    const bad: Array<[string, RegExp]> = [
      ['http://api.internal.example', /^must be an https URL \(http only for localhost/],
      ['api.internal.example', /^must be an absolute URL$/],
      ['ftp://api.internal.example', /^must be an https URL/],
      ['https://user:pw@api.internal.example', /^must not contain a user name or password$/],
      ['https://api.internal.example/#x', /^must not contain a fragment$/],
    ];
    for (const [apiBaseUrl, message] of bad) {
      const fields = configErrors(http, 'bearer', { apiBaseUrl });
      assert.equal(fields.length, 1, apiBaseUrl);
      assert.equal(fields[0]?.path, 'config.apiBaseUrl');
      assert.match(fields[0]?.message ?? '', message, apiBaseUrl);
    }
    assert.equal(validateConnectorConfig(http, 'bearer', { apiBaseUrl: 'http://127.0.0.1:8080/api' }).ok, true);
    const refused = configErrors(http, 'bearer', { apiBaseUrl: 'http://127.0.0.1:8080/api' }, false);
    assert.match(refused[0]?.message ?? '', /--allow-insecure-loopback/);
  });

  it('refuses a location other than header or query, a name that is no header name, and NUL bytes anywhere', () => {
    assert.deepEqual(configErrors(http, 'api_key', { apiBaseUrl: base, in: 'body', name: 'X-Api-Key' }), [
      { path: 'config.in', message: 'is not in the form it takes (Where the API key goes: "header" (default) or "query")' },
    ]);
    for (const name of ['X Api Key', 'X-Api-Key:', 'Ключ', 'x'.repeat(101)]) {
      assert.equal(configErrors(http, 'api_key', { apiBaseUrl: base, name })[0]?.path, 'config.name', name);
    }
    assert.deepEqual(configErrors(http, 'api_key', { apiBaseUrl: `${base}\u0000`, name: 'X-Api\u0000Key' }), [
      { path: 'config.apiBaseUrl', message: 'must not contain control characters' },
      { path: 'config.name', message: 'must not contain control characters' },
    ]);
    // resolveProvider checks again what it places: a value that skipped validation is refused.
    assertConfigRefused(() => resolveProvider(http, { apiBaseUrl: base, name: 'X-Api\u0000Key' }), 'config.name', /control characters/);
  });
});

describe('generic OAuth providers and the API they are for', () => {
  it('oauth2 and oidc take an optional https apiBaseUrl, and resolve without one', () => {
    const configs = {
      oauth2: { authorizationUrl: 'https://idp.example/a', tokenUrl: 'https://idp.example/t', clientId: 'c' },
      oidc: { issuer: 'https://idp.example', clientId: 'c' },
    };
    for (const [id, config] of Object.entries(configs)) {
      const template = provider(id);
      assert.equal(template.config.apiBaseUrl?.required, false, id);
      assert.equal(validateConnectorConfig(template, 'oauth_client_credentials', config).ok, true, id);
      assert.equal(resolveProvider(template, config).apiBaseUrl, undefined, id);
      const withApi = { ...config, apiBaseUrl: 'https://api.example/v1' };
      assert.equal(validateConnectorConfig(template, 'oauth_authorization_code', withApi).ok, true, id);
      assert.equal(resolveProvider(template, withApi).apiBaseUrl, 'https://api.example/v1', id);
      assert.deepEqual(configErrors(template, 'oauth_authorization_code', { ...config, apiBaseUrl: 'ftp://api.example' }).map((f) => f.path), ['config.apiBaseUrl'], id);
    }
  });
});

describe('apiKey references to config fields', () => {
  function keyed(field: Record<string, unknown> | undefined, apiKey: Record<string, unknown> = { in: 'header', name: '{keyName}' }) {
    return {
      id: 'acme',
      name: 'Acme',
      docsUrl: 'https://acme.example/docs',
      authTypes: ['api_key', 'bearer'],
      apiBaseUrl: 'https://api.acme.example',
      apiKey,
      config: field === undefined ? {} : { keyName: field },
    };
  }
  const good = { type: 'string', required: true, description: 'The header.', pattern: '^[A-Za-z-]+$', authTypes: ['api_key'] };

  it('accepts a reference to a required, patterned string field of the api_key auth type', () => {
    assert.equal(parseProviderTemplate(keyed(good), 'acme.json').apiKey?.name, '{keyName}');
  });

  it('refuses a reference to an undeclared, url, optional, unpatterned or non-api_key field', () => {
    assertFileError(keyed(undefined), 'apiKey.name', /^uses \{keyName\}, which is not declared in "config"$/);
    assertFileError(keyed({ ...good, type: 'url', pattern: undefined }), 'apiKey.name', /must be a "string" field/);
    assertFileError(keyed({ ...good, required: false }), 'apiKey.name', /an optional config field without a default/);
    assertFileError(keyed({ ...good, pattern: undefined }), 'apiKey.name', /needs a pattern/);
    assertFileError(keyed({ ...good, authTypes: ['bearer'] }), 'apiKey.name', /must apply to the api_key auth type/);
  });

  it('refuses a location that is neither header, query nor a reference', () => {
    assertFileError(keyed(good, { in: 'cookie', name: 'X-Key' }), 'apiKey.in', /must be "header", "query" or a \{field\} reference/);
    assertFileError(keyed(good, { in: 'header', name: 'X Key' }), 'apiKey.name', /must be a header or parameter name, or a \{field\} reference/);
  });
});
