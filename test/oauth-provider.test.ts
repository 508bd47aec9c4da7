// The test authorization server itself: what the OAuth tests rely on it for.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { startOidcProvider, type TestClient, type TestProvider } from './support/oidc-provider.js';

const REDIRECT_URI = 'http://127.0.0.1:3000/api/v1/oauth/callback';
const insecure = { [oauth.allowInsecureRequests]: true };
let op: TestProvider;
let as: oauth.AuthorizationServer;

const auth = (client: TestClient) =>
  client.authMethod === 'client_secret_post' ? oauth.ClientSecretPost(client.clientSecret) : oauth.ClientSecretBasic(client.clientSecret);

async function refresh(client: TestClient, refreshToken: string, signal?: AbortSignal) {
  const response = await oauth.refreshTokenGrantRequest(as, { client_id: client.clientId }, auth(client), refreshToken, { ...insecure, ...(signal ? { signal } : {}) });
  return oauth.processRefreshTokenResponse(as, { client_id: client.clientId }, response);
}

before(async () => {
  op = await startOidcProvider({ redirectUris: [REDIRECT_URI] });
  const issuer = new URL(op.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
});
after(async () => {
  await op.stop();
});

describe('test authorization server', () => {
  it('publishes its endpoints, revocation and introspection included', () => {
    assert.equal(as.token_endpoint, op.tokenUrl);
    assert.equal(as.revocation_endpoint, op.revocationUrl);
    assert.equal(as.introspection_endpoint, op.introspectionUrl);
    assert.equal(as.authorization_endpoint, op.authorizationUrl);
  });

  it('rotates refresh tokens, and revokes the grant when a consumed one comes back (a double refresh cannot pass unnoticed)', async () => {
    op.resetCounters();
    const minted = await op.mintGrant({ accountId: 'alice' });
    const first = await refresh(op.clients.basic, minted.refreshToken);
    assert.ok(first.refresh_token && first.refresh_token !== minted.refreshToken);
    await assert.rejects(refresh(op.clients.basic, minted.refreshToken), (err: unknown) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant');
    assert.equal(op.counters.refresh, 2);
    assert.equal(op.counters.grantsRevoked, 1);
    assert.equal(await op.introspect(first.access_token), false);
    await assert.rejects(refresh(op.clients.basic, first.refresh_token), (err: unknown) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant');
  });

  it('the no-rotation client answers a refresh without a refresh token, and the old one keeps working', async () => {
    const minted = await op.mintGrant({ accountId: 'bob', client: op.clients.noRotation });
    assert.equal((await refresh(op.clients.noRotation, minted.refreshToken)).refresh_token, undefined);
    assert.ok((await refresh(op.clients.noRotation, minted.refreshToken)).access_token);
  });

  for (const name of ['basic', 'post'] as const) {
    it(`authorization code with PKCE through the dev interactions (client_secret_${name}) issues a refresh token`, async () => {
      const client = op.clients[name];
      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const url = new URL(op.authorizationUrl);
      url.search = new URLSearchParams({
        client_id: client.clientId,
        redirect_uri: REDIRECT_URI,
        response_type: 'code',
        scope: 'api:read',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      }).toString();
      const callback = await op.signIn(url.href, { accountId: 'carol' });
      assert.equal(`${callback.origin}${callback.pathname}`, REDIRECT_URI);
      const params = oauth.validateAuthResponse(as, { client_id: client.clientId }, callback, state);
      const response = await oauth.authorizationCodeGrantRequest(as, { client_id: client.clientId }, auth(client), params, REDIRECT_URI, verifier, insecure);
      const tokens = await oauth.processAuthorizationCodeResponse(as, { client_id: client.clientId }, response);
      assert.ok(tokens.refresh_token);
      assert.equal(await op.introspect(tokens.access_token, client), true);

      const denied = await op.signIn(url.href, { accountId: 'carol', deny: true });
      assert.equal(denied.searchParams.get('error'), 'access_denied');
    });
  }

  it('requires PKCE', async () => {
    const url = new URL(op.authorizationUrl);
    url.search = new URLSearchParams({ client_id: op.clients.basic.clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'api:read', state: 's' }).toString();
    const callback = await op.signIn(url.href, { accountId: 'dave' });
    assert.equal(callback.searchParams.get('error'), 'invalid_request');
  });

  it('switches the token endpoint down, to garbage, and slow', async () => {
    const minted = await op.mintGrant({ accountId: 'erin' });
    op.setDown(true);
    await assert.rejects(refresh(op.clients.basic, minted.refreshToken), (err: unknown) => err instanceof oauth.OperationProcessingError && (err.cause as Response).status === 503);
    op.setDown(false);
    op.setGarbage(true);
    await assert.rejects(refresh(op.clients.basic, minted.refreshToken), (err: unknown) => err instanceof oauth.OperationProcessingError && err.code === oauth.RESPONSE_IS_NOT_JSON);
    op.setGarbage(false);
    // Slow: held for minutes, so a client that waits 100 ms gives up (no wall-clock measurement);
    // the abandoned request is dropped unprocessed.
    op.setSlow(5 * 60_000);
    const refreshesBefore = op.counters.refresh;
    await assert.rejects(refresh(op.clients.basic, minted.refreshToken, AbortSignal.timeout(100)), (err: unknown) => (err as Error).name === 'TimeoutError');
    assert.equal(op.counters.refresh, refreshesBefore, 'the held request never reached the grant logic');
    op.setSlow(0);
    const tokens = await refresh(op.clients.basic, minted.refreshToken);
    assert.ok(tokens.access_token, 'the refresh token survived the refused calls');
  });
});
