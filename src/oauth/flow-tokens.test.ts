import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { TokenEndpointResponse } from 'oauth4webapi';
import { plainText, providerErrorFailure } from './flow-failures.js';
import { toTokenSet } from './flow-tokens.js';

const NOW = new Date('2030-01-01T00:00:00.000Z');

describe('toTokenSet', () => {
  it('maps a full response; extra keeps other fields but never a token', () => {
    const response = {
      access_token: 'at',
      refresh_token: 'rt',
      id_token: 'idt',
      token_type: 'bearer',
      scope: 'read write',
      expires_in: 3600,
      refresh_token_expires_in: 86400,
      instance_url: 'https://acme.my.salesforce.com',
      issued_at: '1700000000',
      signature: 'sig',
      some_token: 'x',
      client_secret: 'y',
    } as TokenEndpointResponse;
    assert.deepEqual(toTokenSet(response, NOW, ['ignored']), {
      accessToken: 'at',
      refreshToken: 'rt',
      tokenType: 'bearer',
      scopes: ['read', 'write'],
      expiresAt: '2030-01-01T01:00:00.000Z',
      issuedAt: NOW.toISOString(),
      refreshTokenExpiresAt: '2030-01-02T00:00:00.000Z',
      extra: { instance_url: 'https://acme.my.salesforce.com', issued_at: '1700000000' },
    });
  });

  it('leaves out what the provider did not send; requested scopes stand in for a missing scope', () => {
    assert.deepEqual(toTokenSet({ access_token: 'at', token_type: 'bearer' }, NOW, ['a', 'b']), { accessToken: 'at', tokenType: 'bearer', scopes: ['a', 'b'] });
    assert.deepEqual(toTokenSet({ access_token: 'at', token_type: 'bearer' }, NOW, []), { accessToken: 'at', tokenType: 'bearer' });
    assert.deepEqual(toTokenSet({ access_token: 'at', token_type: 'bearer', scope: 'repo,user' }, NOW, []).scopes, ['repo', 'user']);
  });
});

describe('provider error text', () => {
  it('is flattened to one plain sentence of bounded length', () => {
    assert.equal(plainText('line one\r\nline\ttwo\u2028three.  '), 'line one line two three');
    assert.equal(plainText('x'.repeat(1000)).length, 300);
    const failure = providerErrorFailure('Acme', 'invalid_scope', '<script>alert(1)</script>\nbad scope.');
    assert.equal(failure.code, 'provider_error');
    assert.equal(failure.providerError, 'invalid_scope');
    assert.equal(failure.message, 'Acme did not authorize the connection: <script>alert(1)</script> bad scope.');
    assert.equal(providerErrorFailure('Acme', 'access_denied', undefined).message, 'Access was not granted at Acme.');
    assert.equal(providerErrorFailure('Acme', 'bad"code\\', undefined).providerError, undefined);
  });
});
