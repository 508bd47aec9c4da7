import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { LatchkeyError } from '../core/index.js';
import { Cancel, createEgressPolicy, createOutbound, type OpenConnection, type ResolvedAddress } from './index.js';

/** A connect step that fails the test if it is ever reached: no packet may leave for these. */
const never: OpenConnection = (options) => assert.fail(`a connection to ${options.hostname} was opened`);

function refused(host: string) {
  return (err: unknown) => {
    assert.ok(err instanceof LatchkeyError, String(err));
    assert.equal(err.code, 'egress_refused');
    assert.equal(err.status, 403);
    assert.ok(err.message.includes(host), `${err.message} names ${host}`);
    return true;
  };
}

describe('egress policy', () => {
  it('refuses loopback, private, link-local, CGNAT, metadata, unique-local and special addresses, also in their IPv6 forms', () => {
    const policy = createEgressPolicy();
    const cases: [string, string][] = [
      ['169.254.169.254', 'a cloud metadata address'],
      ['fd00:ec2::254', 'a cloud metadata address'],
      ['::ffff:169.254.169.254', 'a cloud metadata address'],
      ['10.0.0.1', 'a private address'],
      ['172.16.5.4', 'a private address'],
      ['192.168.1.1', 'a private address'],
      ['100.64.0.1', 'a carrier-grade NAT address'],
      ['127.0.0.1', 'a loopback address'],
      ['127.0.0.2', 'a loopback address'],
      ['::1', 'a loopback address'],
      ['169.254.1.1', 'a link-local address'],
      ['fe80::1', 'a link-local address'],
      ['fd00::1', 'a unique-local address'],
      ['fc00::1', 'a unique-local address'],
      ['0.0.0.0', 'an unspecified address'],
      ['::', 'an unspecified address'],
      ['224.0.0.1', 'a multicast address'],
      ['ff02::1', 'a multicast address'],
      ['255.255.255.255', 'a broadcast address'],
      ['240.0.0.1', 'a reserved address'],
      ['::ffff:10.0.0.1', 'a private address'],
      ['::ffff:127.0.0.1', 'a loopback address'],
      ['::ffff:0:a00:1', 'a private address'],
      ['::a00:1', 'a private address'],
      ['::7f00:1', 'a loopback address'],
      ['64:ff9b::a9fe:a9fe', 'a cloud metadata address'],
      ['2002:a00:1::1', 'a private address'],
    ];
    for (const [address, reason] of cases) assert.equal(policy.refusal('any.example', address), reason, address);
    for (const address of ['8.8.8.8', '93.184.215.14', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808']) {
      assert.equal(policy.refusal('any.example', address), undefined, address);
    }
  });

  it('lets through what the allowlist names: CIDRs, single addresses (also IPv4-mapped) and exact host names', () => {
    const policy = createEgressPolicy(['10.1.0.0/16', '127.0.0.1', '::1/128', 'IdP.Internal.']);
    assert.deepEqual(policy.allow, ['10.1.0.0/16', '127.0.0.1/32', '::1/128', 'idp.internal']);
    assert.equal(policy.refusal('x.example', '10.1.200.3'), undefined);
    assert.equal(policy.refusal('x.example', '10.2.0.1'), 'a private address');
    assert.equal(policy.refusal('x.example', '127.0.0.1'), undefined);
    assert.equal(policy.refusal('x.example', '::ffff:127.0.0.1'), undefined);
    assert.equal(policy.refusal('x.example', '127.0.0.2'), 'a loopback address');
    assert.equal(policy.refusal('x.example', '::1'), undefined);
    assert.equal(policy.refusal('idp.internal', '192.168.7.7'), undefined);
    assert.equal(policy.refusal('sub.idp.internal', '192.168.7.7'), 'a private address', 'names match exactly');
    for (const bad of ['10.0.0.0/33', '::1/129', 'http://idp.internal', '*.internal', 'a..b', '']) {
      assert.throws(() => createEgressPolicy([bad]), TypeError, bad);
    }
  });

  describe('checked after DNS, before any connection', () => {
    for (const address of ['169.254.169.254', '10.0.0.1', '100.64.0.1', 'fd00::1']) {
      it(`refuses a name that resolves to ${address}, naming the host and never the path, query or credential`, async () => {
        const secret = randomBytes(12).toString('hex');
        const resolved: string[] = [];
        const outbound = createOutbound({
          resolve: async (hostname) => {
            resolved.push(hostname);
            return [{ address, family: address.includes(':') ? 6 : 4 }];
          },
          open: never,
        });
        try {
          await assert.rejects(
            outbound.fetch(`https://rebind.example/latest/meta-data?token=${secret}`, { headers: { authorization: `Bearer ${secret}` } }),
            (err: unknown) => refused('rebind.example')(err) && !(err as Error).message.includes(secret) && !(err as Error).message.includes('meta-data'),
          );
          assert.deepEqual(resolved, ['rebind.example']);
        } finally {
          await outbound.close();
        }
      });
    }

    it('refuses a name when any one of its addresses is refused', async () => {
      const outbound = createOutbound({
        resolve: async () => [
          { address: '93.184.215.14', family: 4 },
          { address: '10.0.0.1', family: 4 },
        ],
        open: never,
      });
      await assert.rejects(outbound.fetch('https://mixed.example/'), refused('mixed.example'));
      await outbound.close();
    });

    it('refuses IP literals without asking DNS, in every spelling URL parsing leaves', async () => {
      const outbound = createOutbound({ resolve: async () => assert.fail('DNS asked for an IP literal'), open: never });
      for (const [url, host] of [
        ['http://169.254.169.254/latest/meta-data', '169.254.169.254'],
        ['http://[fd00:ec2::254]/', '[fd00:ec2::254]'],
        ['http://[::ffff:169.254.169.254]/', '[::ffff:a9fe:a9fe]'],
        ['http://0xa9fea9fe/', '169.254.169.254'],
        ['http://10.1/', '10.0.0.1'],
        ['http://[fd00::1]:8443/', '[fd00::1]'],
      ] as const) {
        await assert.rejects(outbound.fetch(url), refused(host), url);
      }
      await outbound.close();
    });

    it('opens the connection to exactly the addresses it checked', async () => {
      const opened: (readonly ResolvedAddress[])[] = [];
      const outbound = createOutbound({
        resolve: async () => [{ address: '93.184.215.14', family: 4 }],
        open: (_options, addresses, callback) => {
          opened.push(addresses);
          callback(Object.assign(new Error('test: not connecting'), { code: 'ECONNREFUSED' }), null);
        },
      });
      await assert.rejects(outbound.fetch('https://public.example/'), (err: unknown) => err instanceof TypeError);
      assert.deepEqual(opened, [[{ address: '93.184.215.14', family: 4 }]]);
      await outbound.close();
    });

    it('refuses a request body over the limit before connecting', async () => {
      const outbound = createOutbound({ resolve: async () => [{ address: '93.184.215.14', family: 4 }], open: never, limits: { maxRequestBytes: 16 } });
      await assert.rejects(
        outbound.fetch('https://public.example/upload', { method: 'POST', body: 'x'.repeat(17) }),
        (err: unknown) => err instanceof LatchkeyError && err.code === 'payload_too_large' && err.status === 413,
      );
      await outbound.close();
    });
  });

  describe('end to end with local servers', () => {
    interface Seen {
      path: string;
      method: string;
      headers: IncomingHttpHeaders;
      body: string;
    }
    const seen: Seen[] = [];
    const servers: Server[] = [];
    /** Port of the server on each loopback address. */
    const port: Record<'v4' | 'v4b' | 'v6', number> = { v4: 0, v4b: 0, v6: 0 };

    function handler(req: IncomingMessage, res: ServerResponse) {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        seen.push({ path: url.pathname, method: req.method ?? '', headers: req.headers, body });
        const to = url.searchParams.get('to');
        if (url.pathname === '/redirect' && to) return res.writeHead(Number(url.searchParams.get('status') ?? 302), { location: to }).end();
        if (url.pathname === '/loop') return res.writeHead(302, { location: '/loop' }).end();
        if (url.pathname === '/big') return res.end('y'.repeat(Number(url.searchParams.get('size'))));
        if (url.pathname === '/stream') {
          res.write('z'.repeat(600));
          return res.end('z'.repeat(600));
        }
        res.setHeader('content-type', 'text/plain');
        res.end(`hello from ${req.socket.localAddress}`);
      });
    }

    before(async () => {
      for (const [key, host] of [
        ['v4', '127.0.0.1'],
        ['v4b', '127.0.0.2'],
        ['v6', '::1'],
      ] as const) {
        const server = createServer(handler);
        await new Promise<void>((resolve) => server.listen(0, host, resolve));
        servers.push(server);
        port[key] = (server.address() as AddressInfo).port;
      }
    });
    after(() => {
      for (const server of servers) server.close();
    });

    const targets = () => ({
      v6: `http://[::1]:${port.v6}/hello`,
      v4b: `http://127.0.0.2:${port.v4b}/hello`,
      name: `http://localhost:${port.v4}/hello`,
    });

    it('refuses [::1], 127.0.0.2 and a name that resolves to 127.0.0.1 without the allowlist; nothing reaches them', async () => {
      const outbound = createOutbound();
      seen.length = 0;
      const t = targets();
      await assert.rejects(outbound.fetch(t.v6), refused('[::1]'));
      await assert.rejects(outbound.fetch(t.v4b), refused('127.0.0.2'));
      await assert.rejects(outbound.fetch(t.name), refused('localhost'));
      assert.equal(seen.length, 0);
      await outbound.close();
    });

    it('allows each of them with the allowlist', async () => {
      const outbound = createOutbound({ egressAllow: ['::1/128', '127.0.0.2/32', 'localhost'] });
      const t = targets();
      assert.equal(await (await outbound.fetch(t.v6)).text(), 'hello from ::1');
      assert.equal(await (await outbound.fetch(t.v4b)).text(), 'hello from 127.0.0.2');
      assert.equal(await (await outbound.fetch(t.name)).text(), 'hello from 127.0.0.1');
      await outbound.close();
    });

    it('connects to the checked address without asking DNS again (a name the resolver alone knows)', async () => {
      const outbound = createOutbound({ egressAllow: ['127.0.0.1/32'], resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
      assert.equal(await (await outbound.fetch(`http://only-in-the-test.invalid:${port.v4}/hello`)).text(), 'hello from 127.0.0.1');
      await outbound.close();
    });

    it('checks every redirect target: refused without the allowlist, followed with it', async () => {
      const t = targets();
      const via = (base: string, to: string) => `${base}/redirect?to=${encodeURIComponent(to)}`;
      const v6 = `http://[::1]:${port.v6}`;
      const v4b = `http://127.0.0.2:${port.v4b}`;
      // The first hop is allowed; the target is not.
      const strictV6 = createOutbound({ egressAllow: ['::1/128'] });
      const strictV4b = createOutbound({ egressAllow: ['127.0.0.2/32'] });
      seen.length = 0;
      await assert.rejects(strictV4b.fetch(via(v4b, t.v6)), refused('[::1]'));
      await assert.rejects(strictV6.fetch(via(v6, t.v4b)), refused('127.0.0.2'));
      await assert.rejects(strictV6.fetch(via(v6, t.name)), refused('localhost'));
      assert.deepEqual(
        seen.map((s) => s.path),
        ['/redirect', '/redirect', '/redirect'],
        'only the first hop was reached',
      );
      await strictV6.close();
      await strictV4b.close();
      const from = (to: string) => via(`http://127.0.0.1:${port.v4}`, to);
      const loose = createOutbound({ egressAllow: ['127.0.0.1/32', '::1/128', '127.0.0.2/32', 'localhost'] });
      assert.equal(await (await loose.fetch(from(t.v6))).text(), 'hello from ::1');
      assert.equal(await (await loose.fetch(from(t.v4b))).text(), 'hello from 127.0.0.2');
      assert.equal(await (await loose.fetch(from(t.name))).text(), 'hello from 127.0.0.1');
      await loose.close();
    });

    it('drops Authorization, Cookie and Proxy-Authorization on a redirect to another origin, and keeps them on the same origin', async () => {
      const outbound = createOutbound({ egressAllow: ['127.0.0.1/32', '127.0.0.2/32'] });
      const secret = randomBytes(12).toString('hex');
      const headers = { authorization: `Bearer ${secret}`, cookie: `s=${secret}`, 'proxy-authorization': `Basic ${secret}`, 'x-keep': 'yes' };
      seen.length = 0;
      const other = `http://127.0.0.2:${port.v4b}/hello`;
      assert.equal((await outbound.fetch(`http://127.0.0.1:${port.v4}/redirect?to=${encodeURIComponent(other)}`, { headers })).status, 200);
      const landed = seen.at(-1) as Seen;
      assert.equal(landed.path, '/hello');
      assert.equal(landed.headers.authorization, undefined);
      assert.equal(landed.headers.cookie, undefined);
      assert.equal(landed.headers['proxy-authorization'], undefined);
      assert.equal(landed.headers['x-keep'], 'yes');
      seen.length = 0;
      assert.equal((await outbound.fetch(`http://127.0.0.1:${port.v4}/redirect?to=%2Fhello`, { headers })).status, 200);
      assert.equal((seen.at(-1) as Seen).headers.authorization, `Bearer ${secret}`, 'same origin keeps the credential');
      await outbound.close();
    });

    it('turns a POST into a GET without its body on 303, keeps it on 307, and stops after 5 redirects', async () => {
      const outbound = createOutbound({ egressAllow: ['127.0.0.1/32'] });
      const base = `http://127.0.0.1:${port.v4}`;
      seen.length = 0;
      await outbound.fetch(`${base}/redirect?status=303&to=%2Fhello`, { method: 'POST', body: 'a=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.deepEqual(
        seen.map((s) => [s.method, s.path, s.body, s.headers['content-type']]),
        [
          ['POST', '/redirect', 'a=1', 'application/x-www-form-urlencoded'],
          ['GET', '/hello', '', undefined],
        ],
      );
      seen.length = 0;
      await outbound.fetch(`${base}/redirect?status=307&to=%2Fhello`, { method: 'POST', body: 'a=1' });
      assert.deepEqual(
        seen.map((s) => [s.method, s.body]),
        [
          ['POST', 'a=1'],
          ['POST', 'a=1'],
        ],
      );
      seen.length = 0;
      await assert.rejects(outbound.fetch(`${base}/loop`), (err: unknown) => err instanceof LatchkeyError && err.code === 'provider_unavailable' && /redirected more than 5 times/.test(err.message));
      assert.equal(seen.length, 6);
      await outbound.close();
    });

    it("hands a redirect itself to a caller that asks for redirect: 'manual' (oauth4webapi does)", async () => {
      const outbound = createOutbound({ egressAllow: ['127.0.0.1/32'] });
      const response = await outbound.fetch(`http://127.0.0.1:${port.v4}/redirect?to=%2Fhello`, { redirect: 'manual' });
      assert.equal(response.status, 302);
      assert.equal(response.headers.get('location'), '/hello');
      await outbound.close();
    });

    it('bounds the response body: by its length up front, and while streaming', async () => {
      const outbound = createOutbound({ egressAllow: ['127.0.0.1/32'], limits: { maxResponseBytes: 1000 } });
      const base = `http://127.0.0.1:${port.v4}`;
      assert.equal((await (await outbound.fetch(`${base}/big?size=1000`)).text()).length, 1000);
      const tooLarge = (err: unknown) => err instanceof LatchkeyError && err.code === 'response_too_large' && err.status === 502 && err.message.includes(`127.0.0.1:${port.v4}`);
      await assert.rejects(outbound.fetch(`${base}/big?size=1001`), tooLarge);
      const streamed = await outbound.fetch(`${base}/stream`);
      assert.equal(streamed.status, 200);
      await assert.rejects(streamed.text(), tooLarge);
      assert.equal((await (await outbound.fetchWith({ maxResponseBytes: 2000 })(`${base}/stream`)).text()).length, 1200);
      await outbound.close();
    });
  });

  describe('streamed requests (the proxy\'s)', () => {
    const servers: Server[] = [];
    let base = '';
    before(async () => {
      const server = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname === '/silent') return; // never answers
        if (url.pathname === '/redirect') return res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end();
        if (url.pathname === '/sized') return res.end('y'.repeat(Number(url.searchParams.get('size'))));
        if (url.pathname === '/chunked') {
          res.write('z'.repeat(600));
          return res.end('z'.repeat(600));
        }
        let size = 0;
        req.on('data', (chunk: Buffer) => (size += chunk.length));
        req.on('end', () => res.end(`got ${size}`));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(() => {
      for (const server of servers) server.close();
    });
    const read = async (body: NodeJS.ReadableStream) => {
      let text = '';
      for await (const chunk of body) text += String(chunk);
      return text;
    };

    it('is refused by the egress policy after DNS, before any connection, naming only the host', async () => {
      const secret = randomBytes(12).toString('hex');
      const outbound = createOutbound({ resolve: async () => [{ address: '169.254.169.254', family: 4 }], open: never });
      try {
        await assert.rejects(
          outbound.streamWith({})({ url: new URL(`https://meta.example/latest?token=${secret}`), method: 'GET', headers: { authorization: secret } }),
          (err: unknown) => refused('meta.example')(err) && !(err as Error).message.includes(secret),
        );
        await assert.rejects(createOutbound().streamWith({})({ url: new URL(`${base}/sized?size=1`), method: 'GET', headers: {} }), refused('127.0.0.1'));
      } finally {
        await outbound.close();
      }
    });

    it('bounds both bodies, follows no redirect, and turns an unreachable or silent provider into provider_unavailable', async () => {
      const outbound = createOutbound({ egressAllow: ['127.0.0.1/32'], timeoutMs: 300, limits: { maxResponseBytes: 1000, maxRequestBytes: 1000 } });
      const stream = outbound.streamWith({});
      try {
        const ok = await stream({ url: new URL(`${base}/sized?size=1000`), method: 'GET', headers: {} });
        assert.equal((await read(ok.body)).length, 1000);
        const tooLarge = (err: unknown) => err instanceof LatchkeyError && err.code === 'response_too_large' && err.message.includes('127.0.0.1');
        await assert.rejects(stream({ url: new URL(`${base}/sized?size=1001`), method: 'GET', headers: {} }), tooLarge);
        const chunked = await stream({ url: new URL(`${base}/chunked`), method: 'GET', headers: {} });
        await assert.rejects(read(chunked.body), tooLarge);
        assert.equal((await read((await outbound.streamWith({ maxResponseBytes: 2000 })({ url: new URL(`${base}/chunked`), method: 'GET', headers: {} })).body)).length, 1200);

        const upload = (size: number) => Readable.from([Buffer.alloc(size / 2), Buffer.alloc(size / 2)]);
        const sent = await stream({ url: new URL(`${base}/upload`), method: 'POST', headers: {}, body: upload(1000) });
        assert.equal(await read(sent.body), 'got 1000');
        await assert.rejects(stream({ url: new URL(`${base}/upload`), method: 'POST', headers: {}, body: upload(1002) }), (err: unknown) => err instanceof LatchkeyError && err.code === 'payload_too_large');
        await assert.rejects(stream({ url: new URL(`${base}/upload`), method: 'POST', headers: {}, body: Buffer.alloc(1001) }), (err: unknown) => err instanceof LatchkeyError && err.code === 'payload_too_large');

        const redirect = await stream({ url: new URL(`${base}/redirect`), method: 'GET', headers: {} });
        assert.equal(redirect.status, 302, 'a redirect is the answer, not followed');
        await redirect.discard();

        const unavailable = (what: RegExp) => (err: unknown) => err instanceof LatchkeyError && err.code === 'provider_unavailable' && what.test(err.message);
        await assert.rejects(stream({ url: new URL(`${base}/silent`), method: 'GET', headers: {} }), unavailable(/did not answer within 300 ms/));
        await assert.rejects(stream({ url: new URL('http://127.0.0.1:1/nothing'), method: 'GET', headers: {} }), unavailable(/could not be reached/));
        // A header value HTTP cannot carry is refused before anything is sent: not the provider's failure, and never the value.
        const smuggled = `${randomBytes(8).toString('hex')}\r\nx-injected: 1`;
        await assert.rejects(stream({ url: new URL(`${base}/sized?size=1`), method: 'GET', headers: { 'x-api-key': smuggled } }), (err: unknown) => {
          assert.ok(err instanceof LatchkeyError);
          assert.equal(err.code, 'invalid_request');
          assert.match(err.message, /^The request to 127\.0\.0\.1:\d+ could not be sent: a header value is not valid in HTTP/);
          assert.ok(!err.message.includes(smuggled.slice(0, 16)) && !JSON.stringify(err).includes(smuggled.slice(0, 16)), 'never the value');
          return true;
        });
        // The caller going away is the caller's own abort, not the provider's failure.
        const gone = new AbortController();
        const pending = stream({ url: new URL(`${base}/silent`), method: 'GET', headers: {}, signal: gone.signal });
        gone.abort(new Error('caller left'));
        await assert.rejects(pending, /caller left/);
        // The same with the proxy's cheaper Cancel, and one aborted before the request starts.
        const left = new Cancel();
        const waiting = stream({ url: new URL(`${base}/silent`), method: 'GET', headers: {}, signal: left });
        left.abort(new Error('caller left too'));
        left.abort(new Error('a second abort changes nothing'));
        await assert.rejects(waiting, /caller left too/);
        await assert.rejects(stream({ url: new URL(`${base}/silent`), method: 'GET', headers: {}, signal: left }), /caller left too/);
        const plain = new Cancel();
        plain.abort();
        assert.equal(plain.aborted, true);
        assert.equal((plain.reason as Error).name, 'AbortError');
      } finally {
        await outbound.close();
      }
    });
  });

  describe('per-key concurrency', () => {
    it('runs at most `concurrency` tasks of one key at once, others in order, keys apart; refuses past maxQueued', async () => {
      const outbound = createOutbound({ concurrency: 2, maxQueued: 2 });
      const started: string[] = [];
      const gates = new Map<string, () => void>();
      const task = (name: string) => () =>
        new Promise<string>((resolve) => {
          started.push(name);
          gates.set(name, () => resolve(name));
        });
      const runs = ['a1', 'a2', 'a3', 'a4'].map((name) => outbound.limit('connector-a', task(name)));
      const other = outbound.limit('connector-b', task('b1'));
      await assert.rejects(outbound.limit('connector-a', task('a5')), (err: unknown) => err instanceof LatchkeyError && err.code === 'rate_limited' && err.message.includes('connector-a'));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(started, ['a1', 'a2', 'b1']);
      gates.get('a1')?.();
      await runs[0];
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(started, ['a1', 'a2', 'b1', 'a3']);
      for (const name of ['a2', 'a3', 'b1']) gates.get(name)?.();
      await new Promise((resolve) => setImmediate(resolve));
      gates.get('a4')?.();
      assert.deepEqual(await Promise.all([...runs, other]), ['a1', 'a2', 'a3', 'a4', 'b1']);
      await outbound.close();
    });
  });
});
