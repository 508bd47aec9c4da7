import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import * as oauth from 'oauth4webapi';
import { LatchkeyError, manualClock } from '../core/index.js';
import { createOutbound, isLoopbackHost } from './index.js';

/** The local test server is on loopback: the egress policy lets it through only when told to. */
const LOCAL = ['127.0.0.1/32'];
let issuer: string;
let up = true;
let served = 0;
const server = createServer((req, res) => {
  served++;
  if (!up || req.url !== '/.well-known/openid-configuration') return res.writeHead(503).end();
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token` }));
});
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
});

describe('outbound', () => {
  it('knows loopback hosts as URL.hostname writes them, and no name that only resolves to one', () => {
    for (const host of ['localhost', 'LOCALHOST', '127.0.0.1', '127.255.3.4', '[::1]']) assert.equal(isLoopbackHost(host), true, host);
    for (const host of ['127.0.0.1.nip.io', '10.0.0.1', '128.0.0.1', '[::2]', 'idp.example', '']) assert.equal(isLoopbackHost(host), false, host);
  });

  it('allows plain http only with the opt-in and only to loopback; refuses with insecure_endpoint', () => {
    const strict = createOutbound();
    const loose = createOutbound({ allowInsecureLoopback: true });
    assert.equal(strict.urlProblem('https://idp.example/token'), undefined);
    assert.match(strict.urlProblem('http://127.0.0.1/token') ?? '', /--allow-insecure-loopback/);
    assert.equal(loose.urlProblem('http://127.0.0.2:8080/token'), undefined);
    assert.match(loose.urlProblem('http://idp.example/token') ?? '', /not a loopback address/);
    assert.match(loose.urlProblem('ftp://127.0.0.1/x') ?? '', /https/);
    assert.throws(
      () => strict.assertAllowed('http://127.0.0.1:9/token?x=1', 'token endpoint'),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'insecure_endpoint' && err.status === 409 && /^The token endpoint http:\/\/127\.0\.0\.1:9\/token uses plain http/.test(err.message),
    );
    assert.equal(loose.oauthOptions('http://127.0.0.1/token')[oauth.allowInsecureRequests], true);
    assert.equal(strict.oauthOptions('http://127.0.0.1/token')[oauth.allowInsecureRequests], undefined);
    assert.equal(loose.oauthOptions('http://idp.example/token')[oauth.allowInsecureRequests], undefined);
    assert.equal(loose.oauthOptions('https://idp.example/token')[oauth.allowInsecureRequests], undefined);
  });

  it('sends every request through the injected fetch, with the egress agent as its dispatcher', async () => {
    const seen: string[] = [];
    const outbound = createOutbound({
      allowInsecureLoopback: true,
      egressAllow: LOCAL,
      fetch: (input, init) => {
        seen.push(String(input));
        assert.ok((init as { dispatcher?: unknown } | undefined)?.dispatcher, 'the egress agent is handed on');
        return fetch(input, init);
      },
    });
    assert.equal((await outbound.fetch(`${issuer}/.well-known/openid-configuration`)).status, 200);
    assert.deepEqual(seen, [`${issuer}/.well-known/openid-configuration`]);
    const refusing = createOutbound({ fetch: (input, init) => fetch(input, init) });
    await assert.rejects(refusing.fetch(`${issuer}/.well-known/openid-configuration`), (err: unknown) => err instanceof LatchkeyError && err.code === 'egress_refused');
  });

  it('discovers once per issuer for the cache time, shares concurrent lookups, and serves the last metadata while a refetch fails', async () => {
    const clock = manualClock(new Date('2030-01-01T00:00:00Z'));
    const outbound = createOutbound({ allowInsecureLoopback: true, egressAllow: LOCAL, discoveryCacheMs: 60_000, clock });
    served = 0;
    const all = await Promise.all(Array.from({ length: 20 }, () => outbound.discovery.metadata(issuer)));
    assert.equal(served, 1);
    assert.equal(all[0]?.token_endpoint, `${issuer}/token`);
    await outbound.discovery.metadata(issuer);
    assert.equal(served, 1, 'cached');
    clock.advance(60_000);
    up = false;
    try {
      assert.equal((await outbound.discovery.metadata(issuer)).token_endpoint, `${issuer}/token`, 'the last metadata while the refetch fails');
      assert.equal(served, 2);
      await outbound.discovery.metadata(issuer);
      assert.equal(served, 3, 'a failure is not cached');
      await assert.rejects(createOutbound({ allowInsecureLoopback: true, egressAllow: LOCAL }).discovery.metadata(issuer), 'nothing to fall back on');
      await assert.rejects(createOutbound({ allowInsecureLoopback: true }).discovery.metadata(issuer), (err: unknown) => err instanceof LatchkeyError && err.code === 'egress_refused');
      await assert.rejects(createOutbound().discovery.metadata(issuer), (err: unknown) => err instanceof LatchkeyError && err.code === 'insecure_endpoint');
    } finally {
      up = true;
    }
  });
});
