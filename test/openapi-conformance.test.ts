// Real answers against the served /openapi.json, on both databases: a walk through the API as an
// admin and as a caller without permissions (successes, 400, 401, 403, 404, 409) where every
// answer must carry a documented status and a body that matches its documented schema.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { eachDialect } from './support/databases.js';
import { createHttpHarness, randomName, randomPassword, type CallOptions, type HttpHarness } from './support/http.js';
import { createConformance, type Conformance } from './support/openapi-conformance.js';

await eachDialect('answers match the OpenAPI description', (dialect) => {
  let h: HttpHarness;
  let conformance: Conformance;
  const problems: string[] = [];
  before(async () => {
    h = await createHttpHarness(dialect);
    const res = await h.call({ method: 'GET', url: '/openapi.json' });
    conformance = createConformance(res.json);
  });
  after(async () => {
    await h?.close();
  });

  const call = async (options: CallOptions) => {
    const answer = await h.call(options);
    problems.push(...conformance.check(options.method, options.url, answer));
    return answer;
  };

  it('catches an answer off its schema and an undocumented status', () => {
    const json = { id: 'usr_1', tenantId: 'ten_1', username: 'u', displayName: null, disabled: false, hasPassword: true, createdAt: 'yesterday', updatedAt: 'yesterday' };
    const answer = { status: 200, headers: { 'content-type': 'application/json' }, text: JSON.stringify(json), json };
    assert.match(conformance.check('GET', '/api/v1/users/usr_1', answer).join(), /must match format "date-time"/);
    assert.match(conformance.check('GET', '/api/v1/users/usr_1', { ...answer, status: 418 }).join(), /does not document/);
  });

  it('answers every walked route with a documented status and a body of its documented schema', async () => {
    const t = await h.tenant();
    const key = t.adminKey;
    await call({ method: 'GET', url: '/healthz' });
    await call({ method: 'GET', url: '/readyz' });
    await call({ method: 'GET', url: '/healthz?x=%00' });
    await call({ method: 'POST', url: '/api/v1/sessions', body: { tenant: 'default', username: 'admin', password: h.adminPassword } });
    await call({ method: 'POST', url: '/api/v1/sessions', body: { tenant: 'default', username: 'admin', password: randomPassword() } });
    await call({ method: 'POST', url: '/api/v1/sessions', body: { tenant: 1 } });
    await call({ method: 'DELETE', url: '/api/v1/sessions/current' });
    await call({ method: 'GET', url: '/api/v1/me', key });
    await call({ method: 'GET', url: '/api/v1/me', key: 'lk_nope' });
    await call({ method: 'GET', url: '/api/v1/tenants/current', key });

    const user = await call({ method: 'POST', url: '/api/v1/users', key, body: { username: randomName('u'), password: randomPassword() } });
    const userId = user.json.id as string;
    await call({ method: 'POST', url: '/api/v1/users', key, body: { username: user.json.username } });
    await call({ method: 'GET', url: '/api/v1/users', key });
    await call({ method: 'GET', url: `/api/v1/users/${userId}`, key });
    await call({ method: 'PATCH', url: `/api/v1/users/${userId}`, key, body: { displayName: 'Someone' } });
    await call({ method: 'GET', url: '/api/v1/users/usr_unknown', key });
    await call({ method: 'GET', url: '/api/v1/users/not-an-id', key });

    const group = await call({ method: 'POST', url: '/api/v1/groups', key, body: { name: randomName('g') } });
    const groupId = group.json.id as string;
    await call({ method: 'GET', url: '/api/v1/groups', key });
    await call({ method: 'GET', url: `/api/v1/groups/${groupId}`, key });
    await call({ method: 'PATCH', url: `/api/v1/groups/${groupId}`, key, body: { name: randomName('g') } });
    await call({ method: 'POST', url: `/api/v1/groups/${groupId}/members`, key, body: { userId } });
    await call({ method: 'GET', url: `/api/v1/groups/${groupId}/members`, key });
    await call({ method: 'DELETE', url: `/api/v1/groups/${groupId}/members/${userId}`, key });

    const role = randomName('r');
    await call({ method: 'POST', url: '/api/v1/roles', key, body: { name: role, permissions: ['connectors:read'] } });
    await call({ method: 'GET', url: '/api/v1/roles', key });
    await call({ method: 'GET', url: `/api/v1/roles/${role}`, key });
    await call({ method: 'PATCH', url: `/api/v1/roles/${role}`, key, body: { description: 'Reads connectors.' } });
    await call({ method: 'POST', url: `/api/v1/roles/${role}/bindings`, key, body: { principal: { type: 'user', id: userId } } });
    await call({ method: 'GET', url: `/api/v1/roles/${role}/bindings`, key });
    await call({ method: 'DELETE', url: `/api/v1/roles/${role}/bindings/user/${userId}`, key });

    const issued = await call({ method: 'POST', url: '/api/v1/api-keys', key, body: { name: 'k', ownerId: userId, expiresIn: '30d', rateLimit: { limit: 10, window: '1m' }, credits: { remaining: 5 } } });
    const keyId = issued.json.apiKey.id as string;
    await call({ method: 'GET', url: '/api/v1/api-keys', key });
    await call({ method: 'GET', url: `/api/v1/api-keys/${keyId}`, key });
    await call({ method: 'POST', url: '/api/v1/api-keys/_verify', key, body: { key: issued.json.key } });
    await call({ method: 'POST', url: '/api/v1/api-keys/_verify', key, body: { key: 'lk_unknown' } });
    await call({ method: 'GET', url: '/api/v1/me', key: issued.json.key });
    await call({ method: 'GET', url: '/api/v1/users', key: issued.json.key });
    await call({ method: 'POST', url: `/api/v1/api-keys/${keyId}/_roll`, key, body: { gracePeriod: '1m' } });
    await call({ method: 'DELETE', url: `/api/v1/api-keys/${keyId}`, key });

    await call({ method: 'GET', url: '/api/v1/providers', key });
    await call({ method: 'GET', url: '/api/v1/providers/github', key });
    await call({ method: 'GET', url: '/api/v1/providers/gitbub', key });
    const connector = await call({
      method: 'POST',
      url: '/api/v1/connectors',
      key,
      body: { name: randomName('c'), provider: 'http', authType: 'bearer', config: { apiBaseUrl: 'https://api.internal.example/v1' }, secrets: { token: randomPassword() } },
    });
    const connectorId = connector.json.id as string;
    await call({ method: 'GET', url: '/api/v1/connectors', key });
    await call({ method: 'GET', url: `/api/v1/connectors/${connectorId}`, key });
    await call({ method: 'PATCH', url: `/api/v1/connectors/${connectorId}`, key, body: { name: randomName('c') } });
    await call({ method: 'POST', url: `/api/v1/connectors/${connectorId}/token`, key });
    await call({ method: 'GET', url: `/api/v1/connectors/${connectorId}/connection`, key });
    await call({ method: 'GET', url: '/api/v1/connections', key });
    await call({ method: 'GET', url: `/api/v1/connectors/${connectorId}/connections`, key });

    const hook = await call({ method: 'POST', url: '/api/v1/webhooks', key, body: { url: 'http://127.0.0.1:9/hook', events: ['connection.created'] } });
    if (hook.status === 201) {
      const hookId = hook.json.endpoint.id as string;
      await call({ method: 'GET', url: '/api/v1/webhooks', key });
      await call({ method: 'GET', url: `/api/v1/webhooks/${hookId}`, key });
      await call({ method: 'PATCH', url: `/api/v1/webhooks/${hookId}`, key, body: { description: 'walk' } });
      await call({ method: 'POST', url: `/api/v1/webhooks/${hookId}/_roll_secret`, key });
      await call({ method: 'GET', url: `/api/v1/webhooks/${hookId}/deliveries`, key });
      await call({ method: 'DELETE', url: `/api/v1/webhooks/${hookId}`, key });
    }
    await call({ method: 'GET', url: '/api/v1/audit', key });
    await call({ method: 'GET', url: '/api/v1/audit?since=2020-01-01T00:00:00Z&until=2999-01-01T00:00:00Z', key });
    await call({ method: 'GET', url: '/api/v1/audit?since=yesterday', key });
    await call({ method: 'GET', url: '/api/v1/settings', key });
    await call({ method: 'GET', url: '/api/v1/doctor', key });
    await call({ method: 'DELETE', url: `/api/v1/connectors/${connectorId}`, key });
    await call({ method: 'DELETE', url: `/api/v1/roles/${role}`, key });
    await call({ method: 'DELETE', url: `/api/v1/groups/${groupId}`, key });
    await call({ method: 'DELETE', url: `/api/v1/users/${userId}`, key });

    assert.deepEqual(problems, []);
    assert.ok(conformance.covered.size >= 45, `${conformance.covered.size} operations walked`);
  });
});
