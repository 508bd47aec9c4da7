// The HTTP part of `npm run bench:apikeys`: autocannon (in this process) against an authenticated
// GET /api/v1/me on a real `latchkey serve` process (SQLite), and against a bare Fastify route
// returning a constant in another process, in alternating runs of the same length.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createTestDatabase } from '../test/support/databases.js';
import { latchkeyEnv, newEncryptionKey, openLatchkey } from './apikeys-latchkey.js';
import { startBareServer, startLatchkeyServer, type BenchServer } from './apikeys-servers.js';

/** The part of autocannon's options and results used here (the package ships no types). */
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  headers?: Record<string, string>;
}
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: { p50: number; p99: number; average: number };
  statusCodeStats?: Record<string, { count: number }>;
}
type Autocannon = (options: AutocannonOptions) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface HttpSettings {
  connections: number;
  durationS: number;
  warmupS: number;
  /** Timed runs per server, alternating A B B A ... */
  runs: number;
}

export interface LoadRun {
  requestsPerSec: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time the server process used per answered request (user + system), when /proc has it. */
  serverCpuUsPerRequest: number | undefined;
  /** CPU time this process (autocannon) used per answered request. */
  clientCpuUsPerRequest: number;
}

export interface LoadSummary {
  name: string;
  runs: LoadRun[];
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerRequest: number | undefined;
  clientCpuUsPerRequest: number;
}

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

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU seconds of a process, from /proc (Linux); undefined elsewhere. */
function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

async function load(server: BenchServer, path: string, headers: Record<string, string>, connections: number, durationS: number): Promise<LoadRun> {
  const serverCpu = processCpuSeconds(server.child.pid);
  const clientCpu = process.cpuUsage();
  const result = await autocannon({ url: `${server.url}${path}`, connections, duration: durationS, headers });
  const clientUsed = process.cpuUsage(clientCpu);
  const serverAfter = processCpuSeconds(server.child.pid);
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(
      `${server.name} ${path}: ${result.non2xx} non-2xx answers and ${result.errors} errors under load ` +
        `(${JSON.stringify(result.statusCodeStats ?? {})}); the figure would be meaningless`,
    );
  }
  const requests = result['2xx'];
  return {
    requestsPerSec: requests / result.duration,
    requests,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    serverCpuUsPerRequest: serverCpu === undefined || serverAfter === undefined ? undefined : ((serverAfter - serverCpu) * 1e6) / requests,
    clientCpuUsPerRequest: (clientUsed.user + clientUsed.system) / requests,
  };
}

function summarise(name: string, runs: LoadRun[]): LoadSummary {
  const mean = (f: (r: LoadRun) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  const serverCpu = runs.every((r) => r.serverCpuUsPerRequest !== undefined) ? mean((r) => r.serverCpuUsPerRequest as number) : undefined;
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  const seconds = runs.reduce((s, r) => s + r.requests / r.requestsPerSec, 0);
  return {
    name,
    runs,
    requestsPerSec: requests / seconds,
    p50Ms: mean((r) => r.p50Ms),
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    serverCpuUsPerRequest: serverCpu,
    clientCpuUsPerRequest: mean((r) => r.clientCpuUsPerRequest),
  };
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
      await load(t.server, t.path, t.headers, settings.connections, settings.warmupS);
    }
    for (let run = 0; run < settings.runs; run++) {
      // Forward, then backward: each target's runs sit at both ends of the sequence.
      for (const t of run % 2 === 0 ? targets : [...targets].reverse()) {
        log(`http: ${t.name}, run ${run + 1} of ${settings.runs} (${settings.connections} connections, ${settings.durationS} s)`);
        t.runs.push(await load(t.server, t.path, t.headers, settings.connections, settings.durationS));
      }
    }
    const [bareT, meT, healthzT, quietT] = targets.map((t) => summarise(t.name, t.runs)) as [LoadSummary, LoadSummary, LoadSummary, LoadSummary];
    return { bare: bareT, me: meT, healthz: healthzT, meQuiet: quietT, meFields };
  } finally {
    for (const s of servers.reverse()) await s.stop();
    await tdb.dispose();
  }
}
