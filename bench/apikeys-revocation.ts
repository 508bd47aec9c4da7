// Revocation propagation for `npm run bench:apikeys`: two `latchkey serve` processes on one
// PostgreSQL database; a key is revoked through one while the other is polled with it until it
// answers 401.
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { createTestDatabase } from '../test/support/databases.js';
import { MissingRoute } from './apikeys-http.js';
import { latchkeyEnv, newEncryptionKey, openLatchkey, type BenchLatchkey } from './apikeys-latchkey.js';
import { startLatchkeyServer, type BenchServer } from './apikeys-servers.js';
import { percentile, sortedCopy } from './support.js';

export interface RevocationSettings {
  revocations: number;
  /** Untimed revocations first. */
  warmup: number;
  /** Give up on one revocation after this long (the bound for a lost notification is 5 s). */
  timeoutMs: number;
}

export interface RevocationResult {
  /** How the revocation was made: `DELETE /api/v1/api-keys/{id}` on server A, or the service in-process. */
  via: 'http' | 'service';
  revocations: number;
  /** From the revoke call to server B's first 401. */
  totalMs: { p50: number; p99: number; max: number };
  /** From the revoke call's answer (durable) to server B's first 401. */
  afterAckMs: { p50: number; p99: number; max: number };
  /** The revoke call itself. */
  revokeCallMs: { p50: number; p99: number };
  /** Polls of B per revocation (each a sequential GET /api/v1/me), mean. */
  pollsPerRevocation: number;
  /** One poll of B, mean: the resolution of the measurement. */
  pollMs: number;
}

interface OpenApiDocument {
  paths?: Record<string, Record<string, unknown>>;
}

/** Whether server A has the revoke route (it may still be being written). */
async function hasRevokeRoute(url: string): Promise<boolean> {
  const res = await fetch(`${url}/openapi.json`);
  if (!res.ok) return false;
  const doc = (await res.json()) as OpenApiDocument;
  const paths = doc.paths ?? {};
  return ['/api/v1/api-keys/{id}', '/api/v1/api-keys/:id'].some((p) => paths[p]?.['delete'] !== undefined);
}

/**
 * A keep-alive HTTP client whose connections come from `localAddress`. Each revocation polls from
 * its own loopback address: the server counts failed authentications per client address (30 a
 * minute by default, then 429 for everything), and every revocation ends in one 401.
 */
class LoopbackClient {
  readonly #agent: Agent;

  constructor(localAddress: string) {
    this.#agent = new Agent({ keepAlive: true, maxSockets: 1, localAddress });
  }

  /** GET `url` with an API key; resolves with the status once the body is read. */
  status(url: string, key: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(url, { agent: this.#agent, headers: { authorization: `ApiKey ${key}` } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** 127.0.x.y for revocation i (never 127.0.0.1, which the set-up's requests come from). */
function loopbackAddress(i: number): string {
  const n = i + 2;
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 2}`;
}

function summary(values: readonly number[]): { p50: number; p99: number; max: number } {
  const sorted = sortedCopy(values);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? Number.NaN };
}

/**
 * Starts servers A and B on one fresh PostgreSQL schema with one master key, mints the keys
 * through an in-process Latchkey on the same schema, and for each key: checks B accepts it (so B
 * has it cached), revokes it through A (or the service, when A has no revoke route yet), and polls
 * B with sequential GET /api/v1/me until the first 401.
 */
export async function benchRevocation(settings: RevocationSettings, log: (message: string) => void): Promise<RevocationResult> {
  const tdb = await createTestDatabase('postgres');
  const servers: BenchServer[] = [];
  let bench: BenchLatchkey | undefined;
  try {
    const encryptionKey = newEncryptionKey();
    const env = latchkeyEnv(tdb, encryptionKey);
    const a = await startLatchkeyServer('server A', env, join(tdb.dataDir, 'a.log'));
    servers.push(a);
    const b = await startLatchkeyServer('server B', env, join(tdb.dataDir, 'b.log'));
    servers.push(b);
    bench = await openLatchkey(tdb, encryptionKey);
    const via = (await hasRevokeRoute(a.url)) ? 'http' : 'service';
    log(`revocation: two servers on PostgreSQL; revoking through ${via === 'http' ? 'DELETE /api/v1/api-keys/{id} on A' : 'apiKeys.service.revoke in this process (A has no revoke route yet)'}`);
    const admin = await bench.mint('bench revocation admin');
    const total = settings.warmup + settings.revocations;
    const keys = [];
    for (let i = 0; i < total; i++) keys.push(await bench.mint(`bench revocation ${i}`));

    const totals: number[] = [];
    const afterAck: number[] = [];
    const calls: number[] = [];
    let polls = 0;
    let pollTime = 0;
    for (const [i, { id, key }] of keys.entries()) {
      const client = new LoopbackClient(loopbackAddress(i));
      const me = `${b.url}/api/v1/me`;
      try {
        for (let n = 0; n < 2; n++) {
          const before = await client.status(me, key);
          if (before === 404) throw new MissingRoute('GET /api/v1/me');
          if (before !== 200) throw new Error(`server B refused a fresh key: ${before}`);
        }
        const t0 = performance.now();
        if (via === 'http') {
          const res = await fetch(`${a.url}/api/v1/api-keys/${id}`, { method: 'DELETE', headers: { authorization: `ApiKey ${admin.key}` } });
          await res.arrayBuffer();
          if (!res.ok) throw new Error(`DELETE /api/v1/api-keys/${id} on A answered ${res.status}`);
        } else {
          await bench.latchkey.apiKeys.service.revoke({ type: 'user', tenantId: bench.tenantId, userId: bench.adminId }, bench.tenantId, id);
        }
        const t1 = performance.now();
        let refusedAt: number | undefined;
        let n = 0;
        while (refusedAt === undefined) {
          const p0 = performance.now();
          const status = await client.status(me, key);
          const p1 = performance.now();
          n++;
          pollTime += p1 - p0;
          if (status === 401) refusedAt = p1;
          else if (status !== 200) throw new Error(`server B answered ${status} while the key was being revoked`);
          else if (p1 - t0 > settings.timeoutMs) throw new Error(`server B still accepted a revoked key after ${settings.timeoutMs} ms`);
        }
        polls += n;
        if (i < settings.warmup) continue;
        totals.push(refusedAt - t0);
        afterAck.push(refusedAt - t1);
        calls.push(t1 - t0);
      } finally {
        client.close();
      }
    }
    const callSummary = summary(calls);
    return {
      via,
      revocations: totals.length,
      totalMs: summary(totals),
      afterAckMs: summary(afterAck),
      revokeCallMs: { p50: callSummary.p50, p99: callSummary.p99 },
      pollsPerRevocation: polls / keys.length,
      pollMs: pollTime / polls,
    };
  } finally {
    await bench?.close();
    for (const s of servers.reverse()) await s.stop();
    await tdb.dispose();
  }
}
