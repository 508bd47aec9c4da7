import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatchkeyError } from '../core/index.js';
import { SECRETS_BY_AUTH_TYPE, createProviderDirectory, loadCatalog, type ProviderView } from './index.js';

const catalog = loadCatalog();
const providers = createProviderDirectory(catalog);

function notFound(id: string): LatchkeyError {
  try {
    providers.get(id);
  } catch (err) {
    assert.ok(err instanceof LatchkeyError);
    assert.equal(err.code, 'not_found');
    return err;
  }
  assert.fail(`${id} was found`);
}

describe('provider directory', () => {
  it('lists every provider of the catalog, sorted by id, with its display name, docs and auth types', () => {
    const list = providers.list();
    assert.deepEqual(list.map((p) => p.id), catalog.list().map((t) => t.id));
    for (const view of list) {
      const template = catalog.get(view.id);
      assert.ok(template);
      assert.equal(view.name, template.name);
      assert.equal(view.docsUrl, template.docsUrl);
      assert.deepEqual(view.authTypes, template.authTypes);
      assert.deepEqual(view.defaultScopes, template.oauth?.scopes.default ?? []);
    }
  });

  it('names every config field and every secret a connector supplies, with its JSON Schema', () => {
    const microsoft = providers.get('microsoft');
    assert.deepEqual(microsoft.defaultScopes, ['offline_access', 'https://graph.microsoft.com/.default']);
    const tenantId = microsoft.fields.find((f) => f.name === 'tenantId');
    assert.ok(tenantId);
    assert.equal(tenantId.location, 'config');
    assert.equal(tenantId.secret, false);
    assert.equal(tenantId.required, true);
    assert.equal(tenantId.schema.type, 'string');
    assert.equal(tenantId.schema.pattern, catalog.get('microsoft')?.config.tenantId?.pattern);
    assert.ok(new RegExp(tenantId.schema.pattern ?? '', 'u').test('contoso.onmicrosoft.com'));
    const clientSecret = microsoft.fields.find((f) => f.name === 'clientSecret');
    assert.deepEqual(clientSecret, {
      name: 'clientSecret',
      location: 'secrets',
      secret: true,
      required: true,
      endUser: false,
      description: 'The OAuth client secret of your app registration.',
      authTypes: ['oauth_authorization_code', 'oauth_client_credentials'],
      schema: { type: 'string', minLength: 1, maxLength: 8192, writeOnly: true },
    });
    assert.equal(tenantId.endUser, false);
    assert.equal(providers.get('zendesk').fields.find((f) => f.name === 'subdomain')?.endUser, true, 'each end user may name their own subdomain');
    const salesforce = providers.get('salesforce').fields.find((f) => f.name === 'loginHost');
    assert.equal(salesforce?.schema.default, 'login.salesforce.com');
    assert.equal(salesforce?.required, false);
    const oauth2 = providers.get('oauth2').fields.find((f) => f.name === 'apiBaseUrl');
    assert.equal(oauth2?.schema.format, 'uri');
    assert.equal(oauth2?.required, false, 'generic OAuth connectors may name the API they are for');
    assert.equal(providers.get('oidc').fields.find((f) => f.name === 'apiBaseUrl')?.required, false);
  });

  it('scopes each field to its auth types, and lists exactly the secrets of each auth type', () => {
    for (const view of providers.list()) {
      for (const authType of view.authTypes) {
        const secrets = view.fields.filter((f) => f.location === 'secrets' && f.authTypes.includes(authType)).map((f) => f.name);
        assert.deepEqual(secrets, [...SECRETS_BY_AUTH_TYPE[authType]], `${view.id} ${authType}`);
      }
      for (const field of view.fields) {
        assert.ok(field.authTypes.every((authType) => view.authTypes.includes(authType)), `${view.id}.${field.name}`);
        assert.equal(field.location === 'secrets', field.schema.writeOnly === true, `${view.id}.${field.name}`);
      }
    }
    const github = providers.get('github');
    assert.deepEqual(github.fields.map((f) => [f.name, f.authTypes]), [
      ['clientId', ['oauth_authorization_code']],
      ['scopes', ['oauth_authorization_code']],
      ['clientSecret', ['oauth_authorization_code']],
      ['token', ['bearer']],
    ]);
  });

  it('describes the generic http provider: a required https base URL, the key placement, and which secrets are secret', () => {
    const http = providers.get('http');
    assert.deepEqual(http.authTypes, ['api_key', 'basic', 'bearer']);
    const byName = Object.fromEntries(http.fields.map((f) => [f.name, f]));
    assert.equal(byName.apiBaseUrl?.required, true);
    assert.equal(byName.apiBaseUrl?.schema.format, 'uri');
    assert.deepEqual(byName.in?.schema, { type: 'string', minLength: 1, maxLength: 2048, pattern: '^(?:header|query)$', default: 'header' });
    assert.deepEqual(byName.name?.authTypes, ['api_key']);
    assert.equal(byName.name?.required, true);
    const secrets = http.fields.filter((f) => f.location === 'secrets').map((f) => [f.name, f.secret]);
    assert.deepEqual(secrets, [['apiKeyValue', true], ['username', false], ['password', true], ['token', true]]);
  });

  it('hands out copies: a caller changing a view changes nothing for the next one', () => {
    const view: ProviderView = providers.get('github');
    view.name = 'Changed';
    view.fields.length = 0;
    assert.equal(providers.get('github').name, 'GitHub');
    assert.equal(providers.get('github').fields.length, 4);
    providers.list()[0]?.authTypes.push('none');
    assert.deepEqual(providers.list()[0]?.authTypes, catalog.list()[0]?.authTypes);
  });

  it('answers an unknown id with not_found naming the nearest ids', () => {
    const cases: Array<[string, string[]]> = [
      ['gihub', ['github']],
      ['GitHub', ['github']],
      ['slak', ['slack']],
      ['microsoft-graph', ['microsoft']],
      ['google-drive', ['google']],
      ['oidcc', ['oidc']],
      ['gitlub', ['github', 'gitlab']],
    ];
    for (const [id, suggestions] of cases) {
      const err = notFound(id);
      assert.deepEqual(err.details?.suggestions, suggestions, id);
      assert.ok(err.message.startsWith(`No provider with id "${id}" is in the catalog; did you mean `), err.message);
      for (const suggestion of suggestions) assert.ok(err.message.includes(suggestion), err.message);
    }
    const far = notFound('xyzzy-quux');
    assert.deepEqual(far.details?.suggestions, []);
    assert.equal(far.message, 'No provider with id "xyzzy-quux" is in the catalog; list the providers to see which exist.');
    assert.deepEqual(notFound('o').details?.suggestions, []);
  });

  it('does not echo an id that is not id-shaped', () => {
    const odd = notFound('<script>alert(1)</script>');
    assert.ok(!odd.message.includes('<script>'), odd.message);
    assert.match(odd.message, /^No provider with that id is in the catalog/);
    assert.throws(() => providers.get(42 as unknown as string), TypeError);
  });
});
