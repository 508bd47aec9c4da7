// The provider catalog and the credentials of api_key, basic and bearer connectors over HTTP, end
// to end through createLatchkey on both databases: GET /providers and /providers/{id} (nearest ids
// for an unknown one), generic http connectors validated field by field, POST .../token answering
// each auth type's typed credential to connectors:token only, audited, and never anywhere else.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { eachDialect } from './support/databases.js';
import { assertError, createHttpHarness, randomName, type Answer, type HttpHarness } from './support/http.js';

const BASE = 'https://api.internal.example/v1';
const secret = (): string => `cred-${randomBytes(18).toString('base64url')}`;

await eachDialect('HTTP providers and static credentials', (dialect) => {
  let h: HttpHarness;
  before(async () => {
    h = await createHttpHarness(dialect);
  });
  after(async () => {
    await h?.close();
  });

  const create = async (key: string, body: Record<string, unknown>): Promise<{ id: string }> => {
    const res = await h.call({ method: 'POST', url: '/api/v1/connectors', key, body: { name: randomName('c'), ...body } });
    assert.equal(res.status, 201, res.text);
    return res.json as { id: string };
  };
  const token = (key: string, id: string, query = '') => h.call({ method: 'POST', url: `/api/v1/connectors/${id}/token${query}`, key });

  it('lists the catalog and gets one provider, for connectors:read', async () => {
    const t = await h.tenant();
    const listed = await h.call({ method: 'GET', url: '/api/v1/providers', key: t.adminKey });
    assert.equal(listed.status, 200, listed.text);
    const ids = (listed.json.items as { id: string }[]).map((p) => p.id);
    assert.deepEqual(ids, [...ids].sort());
    for (const id of ['github', 'microsoft', 'oauth2', 'oidc', 'http', 'stripe']) assert.ok(ids.includes(id), id);

    const github = await h.call({ method: 'GET', url: '/api/v1/providers/github', key: t.adminKey });
    assert.equal(github.status, 200, github.text);
    assert.deepEqual(Object.keys(github.json).sort(), ['authTypes', 'defaultScopes', 'docsUrl', 'fields', 'id', 'name']);
    assert.equal(github.json.name, 'GitHub');
    assert.deepEqual(github.json.authTypes, ['oauth_authorization_code', 'bearer']);
    assert.deepEqual(github.json.defaultScopes, ['read:user', 'user:email']);
    assert.match(github.json.docsUrl, /^https:\/\/docs\.github\.com\//);
    assert.deepEqual(
      github.json.fields.map((f: { name: string; location: string; secret: boolean }) => [f.name, f.location, f.secret]),
      [['clientId', 'config', false], ['scopes', 'config', false], ['clientSecret', 'secrets', true], ['token', 'secrets', true]],
    );
    assert.deepEqual(listed.json.items.find((p: { id: string }) => p.id === 'github'), github.json);

    const http = await h.call({ method: 'GET', url: '/api/v1/providers/http', key: t.adminKey });
    const apiBaseUrl = http.json.fields.find((f: { name: string }) => f.name === 'apiBaseUrl');
    assert.deepEqual(apiBaseUrl.schema, { type: 'string', format: 'uri', minLength: 1, maxLength: 2048 });
    assert.equal(apiBaseUrl.required, true);

    // A viewer reads the catalog; a user without connectors:read does not; nobody unauthenticated.
    const viewer = await t.user(['viewer']);
    const { key: viewerKey } = await t.key(viewer.id);
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/providers', key: viewerKey })).status, 200);
    const nobody = await t.user([]);
    const { key: nobodyKey } = await t.key(nobody.id);
    assert.match(assertError(await h.call({ method: 'GET', url: '/api/v1/providers', key: nobodyKey }), 403, 'forbidden'), /connectors:read/);
    assertError(await h.call({ method: 'GET', url: '/api/v1/providers/github', key: nobodyKey }), 403, 'forbidden');
    assertError(await h.call({ method: 'GET', url: '/api/v1/providers' }), 401, 'unauthorized');
  });

  it('answers an unknown provider id with not_found and the nearest ids', async () => {
    const t = await h.tenant();
    const typo = await h.call({ method: 'GET', url: '/api/v1/providers/gihub', key: t.adminKey });
    assert.equal(assertError(typo, 404, 'not_found'), 'No provider with id "gihub" is in the catalog; did you mean github?');
    assert.deepEqual(typo.json.error.details, { suggestions: ['github'] });
    const far = await h.call({ method: 'GET', url: '/api/v1/providers/nothing-like-it', key: t.adminKey });
    assertError(far, 404, 'not_found');
    assert.deepEqual(far.json.error.details, { suggestions: [] });
    const odd = await h.call({ method: 'GET', url: `/api/v1/providers/${encodeURIComponent('<b>x</b>')}`, key: t.adminKey });
    assert.ok(!assertError(odd, 404, 'not_found').includes('<b>'));
    assertError(await h.call({ method: 'GET', url: '/api/v1/providers/git%00hub', key: t.adminKey }), 400, 'validation_failed');
  });

  it('validates generic http connectors field by field: bad URL, missing name, NUL bytes', async () => {
    const t = await h.tenant();
    const bad = async (body: Record<string, unknown>): Promise<Record<string, string>> => {
      const res = await h.call({ method: 'POST', url: '/api/v1/connectors', key: t.adminKey, body: { name: 'x', provider: 'http', ...body } });
      assertError(res, 400, 'validation_failed');
      return Object.fromEntries((res.json.error.details.fields as { path: string; message: string }[]).map((f) => [f.path, f.message]));
    };
    const key = secret();
    const missing = await bad({ authType: 'api_key', config: { apiBaseUrl: 'not a url' }, secrets: { apiKeyValue: key } });
    assert.deepEqual(missing, { 'config.apiBaseUrl': 'must be an absolute URL', 'config.name': 'is required' });
    const plain = await bad({ authType: 'bearer', config: { apiBaseUrl: 'http://api.internal.example' }, secrets: { token: key } });
    assert.match(plain['config.apiBaseUrl'] ?? '', /plain http/);
    assert.deepEqual(await bad({ authType: 'api_key', config: { apiBaseUrl: BASE, in: 'cookie', name: 'X-Key' }, secrets: { apiKeyValue: key } }), {
      'config.in': 'is not in the form it takes (Where the API key goes: "header" (default) or "query")',
    });
    assert.deepEqual(Object.keys(await bad({ authType: 'api_key', config: { apiBaseUrl: BASE, name: 'X Key' }, secrets: { apiKeyValue: key } })), ['config.name']);
    assert.deepEqual(await bad({ authType: 'basic', config: { apiBaseUrl: BASE }, secrets: { password: key } }), {
      'secrets.username': 'is required for auth type basic',
    });
    // NUL bytes are refused before any route runs, naming the field and never the value.
    const nul = await h.call({
      method: 'POST',
      url: '/api/v1/connectors',
      key: t.adminKey,
      body: { name: 'x', provider: 'http', authType: 'api_key', config: { apiBaseUrl: BASE, name: 'X-Key\u0000' }, secrets: { apiKeyValue: key } },
    });
    assertError(nul, 400, 'validation_failed');
    assert.match(nul.text, /config\.name/);
    for (const answer of h.answers) assert.ok(!answer.text.includes(key), 'a refused secret is never echoed');
    assert.equal((await h.call({ method: 'GET', url: '/api/v1/connectors', key: t.adminKey })).json.items.length, 0);
  });

  it('answers the typed credential of api_key, basic and bearer connectors to connectors:token, audited, and nowhere else', async () => {
    const t = await h.tenant();
    const other = await h.tenant();
    const values = { header: secret(), query: secret(), stripe: secret(), password: secret(), token: secret(), pat: secret() };
    const username = `svc-${randomBytes(4).toString('hex')}`;
    const header = await create(t.adminKey, { provider: 'http', authType: 'api_key', config: { apiBaseUrl: BASE, name: 'X-Api-Key' }, secrets: { apiKeyValue: values.header } });
    const query = await create(t.adminKey, { provider: 'http', authType: 'api_key', config: { apiBaseUrl: BASE, in: 'query', name: 'key' }, secrets: { apiKeyValue: values.query } });
    const stripe = await create(t.adminKey, { provider: 'stripe', authType: 'api_key', secrets: { apiKeyValue: values.stripe } });
    const basic = await create(t.adminKey, { provider: 'http', authType: 'basic', config: { apiBaseUrl: BASE }, secrets: { username, password: values.password } });
    const bearer = await create(t.adminKey, { provider: 'http', authType: 'bearer', config: { apiBaseUrl: BASE }, secrets: { token: values.token } });
    const github = await create(t.adminKey, { provider: 'github', authType: 'bearer', secrets: { token: values.pat } });

    const issuing = new Map<Answer, string[]>();
    const expected = [
      [header, { authType: 'api_key', in: 'header', name: 'X-Api-Key', prefix: '', key: values.header }],
      [query, { authType: 'api_key', in: 'query', name: 'key', prefix: '', key: values.query }],
      [stripe, { authType: 'api_key', in: 'header', name: 'Authorization', prefix: 'Bearer ', key: values.stripe }],
      [basic, { authType: 'basic', username, password: values.password }],
      [bearer, { authType: 'bearer', token: values.token }],
      [github, { authType: 'bearer', token: values.pat }],
    ] as const;
    for (const [connector, credential] of expected) {
      const res = await token(t.adminKey, connector.id);
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.deepEqual(res.json, credential);
      issuing.set(res, Object.values(credential));
    }

    // connectors:token is needed: an editor has it, a viewer (connectors:read) does not.
    const editor = await t.user(['editor']);
    const { key: editorKey } = await t.key(editor.id);
    const byEditor = await token(editorKey, bearer.id);
    assert.deepEqual(byEditor.json, { authType: 'bearer', token: values.token });
    issuing.set(byEditor, [values.token]);
    const viewer = await t.user(['viewer']);
    const { key: viewerKey } = await t.key(viewer.id);
    for (const [connector] of expected) assert.match(assertError(await token(viewerKey, connector.id), 403, 'forbidden'), /connectors:token/);
    // Another tenant's connector id is an unknown id; a shared connector takes no ?user=.
    for (const [connector] of expected) assertError(await token(other.adminKey, connector.id), 404, 'not_found');
    assertError(await token(t.adminKey, bearer.id, `?user=${t.adminId}`), 400, 'invalid_request');

    // Every handout is attributable, without the credential.
    const audit = await h.call({ method: 'GET', url: '/api/v1/audit?action=connector.credential_issued&limit=500', key: t.adminKey });
    assert.equal(audit.status, 200, audit.text);
    const events = (audit.json.items as { actor: string; target: string; details: { authType: string } }[]).reverse();
    assert.deepEqual(
      events.map((e) => [e.target, e.details.authType]),
      [...expected.map(([c, cred]) => [c.id, cred.authType]), [bearer.id, 'bearer']],
    );
    assert.ok(events.slice(0, -1).every((e) => e.actor === events[0]?.actor) && events.at(-1)?.actor !== events[0]?.actor, 'the caller is named');
    const otherAudit = await h.call({ method: 'GET', url: '/api/v1/audit?action=connector.credential_issued', key: other.adminKey });
    assert.deepEqual(otherAudit.json.items, []);

    // Reads show flags, never values; the log never holds a credential.
    for (const [connector] of expected) await h.call({ method: 'GET', url: `/api/v1/connectors/${connector.id}`, key: t.adminKey });
    await h.call({ method: 'GET', url: '/api/v1/connectors', key: t.adminKey });
    await h.call({ method: 'GET', url: '/api/v1/audit?limit=500', key: t.adminKey });
    await h.call({ method: 'GET', url: '/api/v1/providers', key: t.adminKey });
    const logs = h.logs();
    assert.match(logs, /"msg":"request completed"/, 'the log was captured');
    for (const value of Object.values(values)) {
      assert.ok(!logs.includes(value), 'no credential in the log');
      for (const answer of h.answers) {
        if (issuing.get(answer)?.includes(value)) continue;
        assert.ok(!answer.text.includes(value), `a credential in an answer (${answer.status}): ${answer.text.slice(0, 200)}`);
        assert.ok(!JSON.stringify(answer.headers).includes(value), 'a credential in a header');
      }
    }
  });

  it('documents the provider routes and the typed token answer in OpenAPI', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    const spec = JSON.parse(res.body) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: unknown }> }> }>>;
      components: { schemas: Record<string, unknown> };
    };
    for (const [path, statuses] of [['/api/v1/providers', ['200', '401', '403']], ['/api/v1/providers/{id}', ['200', '401', '403', '404']]] as const) {
      const operation = spec.paths[path]?.get;
      assert.ok(operation, path);
      for (const status of statuses) assert.ok(status in operation.responses, `${path} documents ${status}`);
    }
    for (const name of ['Provider', 'ProviderField', 'ConnectorCredential', 'ApiKeyCredential', 'BasicCredential', 'BearerCredential']) {
      assert.ok(name in spec.components.schemas, `component ${name}`);
    }
    const answer = JSON.stringify(spec.paths['/api/v1/connectors/{id}/token']?.post?.responses['200']);
    assert.match(answer, /ConnectorCredential/);
    assert.match(answer, /AccessToken/);
  });
});
