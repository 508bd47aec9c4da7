// The HTTP part of `npm run bench:apikeys`: autocannon (in this process) against an authenticated
// GET /api/v1/me on a real `latchkey serve` process (SQLite), and against a bare Fastify route
// returning a constant in another process, in alternating runs of the same length.
import { join } from 'node:path';
import { createTestDatabase } from '../test/support/databases.js';
import { latchkeyEnv, newEncryptionKey, openLatchkey } from './apikeys-latchkey.js';
import { startBareServer, startLatchkeyServer, type BenchServer } from './apikeys-servers.js';
import { load, summarise, type HttpSettings, type LoadRun, type LoadSummary } from './http-load.js';

export type { HttpSettings, LoadRun, LoadSummary };

export interface HttpResult {
  bare: LoadSummary;
  /** The target: GET /api/v1/me authenticated by an API key, server at its default log level. */
  me: LoadSummary;
  /** For the analysis: the same server's GET /healthz (same hooks, no authentication, constant answer). */
  healthz: LoadSummary;
  /** For the analysis: GET /api/v1/me on a second server logging at warn (no line per request). */
  meQuiet: LoadSummary;
  /** The top-level fields of the /me answer, to show what the route returns. */
  meFields: string[];
}

/** The server has no GET /api/v1/me (it is being written); the HTTP parts cannot run yet. */
export class MissingRoute extends Error {
  constructor(what: string) {
    super(`${what} is not served by \`latchkey serve\` yet (answered 404)`);
    this.name = 'MissingRoute';
  }
}

/** True once GET /api/v1/me answers 200 for `key` (false while the route is not there: 404). */
export async function meAnswers(url: string, key: string): Promise<{ ok: boolean; status: number; body: unknown }> {
  const res = await fetch(`${url}/api/v1/me`, { headers: { authorization: `ApiKey ${key}` } });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { ok: res.status === 200, status: res.status, body };
}

/**
 * Starts the servers (`latchkey serve` at its default log level, a second one logging at warn on
 * the same SQLite file, and the bare Fastify route), mints a key (no limits) for the bootstrap
 * admin through an in-process Latchkey on that file, checks that /me answers 200, warms every
 * target up, then runs autocannon against each in turn, the order reversed every other run.
 */
export async function benchHttp(settings: HttpSettings, log: (message: string) => void): Promise<HttpResult> {
  const tdb = await createTestDatabase('sqlite');
  const servers: BenchServer[] = [];
  try {
    const encryptionKey = newEncryptionKey();
    const env = latchkeyEnv(tdb, encryptionKey);
    const latchkeyServer = await startLatchkeyServer('latchkey serve', env, join(tdb.dataDir, 'serve.log'));
    servers.push(latchkeyServer);
    const minting = await openLatchkey(tdb, encryptionKey);
    const { key } = await minting.mint('bench http');
    await minting.close();
    const first = await meAnswers(latchkeyServer.url, key);
    if (first.status === 404) throw new MissingRoute('GET /api/v1/me');
    if (!first.ok) throw new Error(`GET /api/v1/me answered ${first.status}: ${JSON.stringify(first.body)}`);
    const meFields = typeof first.body === 'object' && first.body !== null ? Object.keys(first.body) : [];
    const quiet = await startLatchkeyServer('latchkey serve (log level warn)', { ...env, LATCHKEY_LOG_LEVEL: 'warn' }, join(tdb.dataDir, 'serve-warn.log'));
    servers.push(quiet);
    const bare = await startBareServer(join(tdb.dataDir, 'bare.log'));
    servers.push(bare);

    const headers = { authorization: `ApiKey ${key}` };
    const none: Record<string, string> = {};
    const targets = [
      { name: 'bare Fastify route returning a constant', server: bare, path: '/bare', headers: none, runs: [] as LoadRun[] },
      { name: 'Latchkey GET /api/v1/me, authenticated by API key', server: latchkeyServer, path: '/api/v1/me', headers, runs: [] as LoadRun[] },
      { name: 'Latchkey GET /healthz (no authentication), same server', server: latchkeyServer, path: '/healthz', headers: none, runs: [] as LoadRun[] },
      { name: 'Latchkey GET /api/v1/me, server logging at warn', server: quiet, path: '/api/v1/me', headers, runs: [] as LoadRun[] },
    ];
    for (const t of targets) {
      log(`http: warming up ${t.name} (${settings.warmupS} s)`);
      await load(t, settings.connections, settings.warmupS);
    }
    for (let run = 0; run < settings.runs; run++) {
      // Forward, then backward: each target's runs sit at both ends of the sequence.
      for (const t of run % 2 === 0 ? targets : [...targets].reverse()) {
        log(`http: ${t.name}, run ${run + 1} of ${settings.runs} (${settings.connections} connections, ${settings.durationS} s)`);
        t.runs.push(await load(t, settings.connections, settings.durationS));
      }
    }
    const [bareT, meT, healthzT, quietT] = targets.map((t) => summarise(t.name, t.runs)) as [LoadSummary, LoadSummary, LoadSummary, LoadSummary];
    return { bare: bareT, me: meT, healthz: healthzT, meQuiet: quietT, meFields };
  } finally {
    for (const s of servers.reverse()) await s.stop();
    await tdb.dispose();
  }
}
