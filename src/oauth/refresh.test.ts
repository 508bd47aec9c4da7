import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { createOutbound } from '../outbound/index.js';
import { backoffDelayMs, classifyRefreshError, type RefreshFailure } from './refresh.js';

const as: oauth.AuthorizationServer = { issuer: 'https://as.example.com', token_endpoint: 'https://as.example.com/token' };
const client: oauth.Client = { client_id: 'latchkey' };

/** What oauth4webapi throws for this token endpoint answer, sorted. */
async function classifyAnswer(status: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<RefreshFailure> {
  try {
    await oauth.processRefreshTokenResponse(as, client, new Response(body, { status, headers }));
  } catch (err) {
    return classifyRefreshError(err);
  }
  assert.fail('the answer was accepted');
}

describe('refresh failure classification', () => {
  const cases: [string, number, string, Record<string, string> | undefined, RefreshFailure][] = [
    ['invalid_grant', 400, '{"error":"invalid_grant"}', undefined, { outcome: 'needs_reauthorization', code: 'invalid_grant', status: 400 }],
    ['invalid_client in the body', 401, '{"error":"invalid_client"}', undefined, { outcome: 'needs_reauthorization', code: 'invalid_client', status: 401 }],
    [
      'invalid_client in a Basic challenge',
      401,
      '{"error":"invalid_client"}',
      { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="as", error="invalid_client"' },
      { outcome: 'needs_reauthorization', code: 'invalid_client', status: 401 },
    ],
    ['a bare 401 challenge', 401, '', { 'www-authenticate': 'Basic realm="as"' }, { outcome: 'needs_reauthorization', code: 'invalid_client', status: 401 }],
    ['invalid_scope (transient for us)', 400, '{"error":"invalid_scope"}', undefined, { outcome: 'degraded', code: 'invalid_scope', status: 400 }],
    ['an odd error code', 400, '{"error":"Bad Thing!"}', undefined, { outcome: 'degraded', code: 'provider_error', status: 400 }],
    ['a 500 with an OAuth body', 500, '{"error":"server_error"}', undefined, { outcome: 'degraded', code: 'server_error', status: 500 }],
    ['invalid_grant in a 503', 503, '{"error":"invalid_grant"}', undefined, { outcome: 'degraded', code: 'server_error', status: 503 }],
    ['a 503 in plain text', 503, 'Service Unavailable', { 'content-type': 'text/plain' }, { outcome: 'degraded', code: 'server_error', status: 503 }],
    ['a 404 page', 404, '<html></html>', { 'content-type': 'text/html' }, { outcome: 'degraded', code: 'unexpected_status', status: 404 }],
    ['a 200 HTML page', 200, '<html></html>', { 'content-type': 'text/html' }, { outcome: 'degraded', code: 'invalid_response' }],
    ['a 200 JSON array', 200, '[]', undefined, { outcome: 'degraded', code: 'invalid_response' }],
    ['no access_token', 200, '{"token_type":"bearer"}', undefined, { outcome: 'degraded', code: 'invalid_response' }],
    ['no token_type', 200, '{"access_token":"a"}', undefined, { outcome: 'degraded', code: 'invalid_response' }],
    ['a bad expires_in', 200, '{"access_token":"a","token_type":"bearer","expires_in":"soon"}', undefined, { outcome: 'degraded', code: 'invalid_response' }],
    ['a refresh_token that is no string', 200, '{"access_token":"a","token_type":"bearer","refresh_token":7}', undefined, { outcome: 'degraded', code: 'invalid_response' }],
    ['an unknown token_type', 200, '{"access_token":"a","token_type":"mac"}', undefined, { outcome: 'degraded', code: 'invalid_response' }],
  ];
  for (const [name, status, body, headers, expected] of cases) {
    it(name, async () => {
      assert.deepEqual(await classifyAnswer(status, body, headers), expected);
    });
  }

  it('a timeout', async () => {
    const signal = AbortSignal.timeout(1);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(classifyRefreshError(signal.reason), { outcome: 'degraded', code: 'timeout' });
  });

  it('a refused connection', async () => {
    const err = await fetch('http://127.0.0.1:1/token', { method: 'POST' }).catch((e: unknown) => e);
    assert.deepEqual(classifyRefreshError(err), { outcome: 'degraded', code: 'network_error' });
  });

  it('plain http without the opt-in', async () => {
    const err = await oauth
      .refreshTokenGrantRequest({ issuer: 'http://as.example.com', token_endpoint: 'http://as.example.com/token' }, client, oauth.None(), 'rt')
      .catch((e: unknown) => e);
    assert.deepEqual(classifyRefreshError(err), { outcome: 'degraded', code: 'invalid_endpoint' });
  });
});

describe('refresh backoff', () => {
  it('doubles from 1 s up to 10 minutes, with 80 to 100 % jitter', () => {
    const top = () => 0.999999;
    assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelayMs(n, {}, () => 0)), [800, 1600, 3200, 6400]);
    assert.equal(backoffDelayMs(1, {}, top), 1000);
    assert.equal(backoffDelayMs(30, {}, top), 600_000);
    assert.equal(backoffDelayMs(1000, {}, top), 600_000);
    assert.equal(backoffDelayMs(3, { initialMs: 100, maxMs: 250 }, top), 250);
  });
});

describe('refresh with an id_token from a provider whose issuer is unknown', () => {
  it('drops the id_token instead of failing on its issuer, and still checks it when the issuer is known', async () => {
    const { createServer } = await import('node:http');
    const { randomBytes } = await import('node:crypto');
    const { requestTokens } = await import('./refresh.js');
    const accessToken = randomBytes(24).toString('base64url');
    // An unsigned id_token whose iss is another host, as Google or Microsoft "common" would send.
    const idToken = [{ alg: 'none' }, { iss: 'https://accounts.other.example', sub: 'u', aud: 'latchkey' }]
      .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
      .join('.') + '.';
    const server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: 3600, id_token: idToken }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const base = {
      connectorId: 'con_x',
      tokenMode: 'shared' as const,
      authType: 'oauth_authorization_code' as const,
      tokenUrl: `http://127.0.0.1:${port}/token`,
      clientId: 'latchkey',
      clientSecret: randomBytes(16).toString('hex'),
      clientAuthentication: 'client_secret_basic' as const,
      scopes: [],
      scopeSeparator: ' ',
      tokenParams: {},
    };
    try {
      const http = createOutbound({ timeoutMs: 5000, allowInsecureLoopback: true, egressAllow: ['127.0.0.1/32'] });
      const tokens = await requestTokens(base, { type: 'refresh_token', refreshToken: 'rt' }, http);
      assert.equal(tokens.access_token, accessToken);
      assert.equal(tokens.id_token, undefined);
      await assert.rejects(requestTokens({ ...base, issuer: `http://127.0.0.1:${port}` }, { type: 'refresh_token', refreshToken: 'rt' }, http));
    } finally {
      server.close();
    }
  });
});
