// `npm run bench:http [-- --quick]`: Latchkey's HTTP stack next to a bare Fastify route, same run.
// autocannon (in this process) puts each target under load in turn, alternating the order: the
// bare route, GET /healthz, GET /api/v1/me and POST /api/v1/api-keys/_verify with an API key, on
// a real `latchkey serve` (SQLite, default log level: one request line per request, to a file).
// The server's CPU time per request comes from /proc. Two parts are also measured in a server: a
// second `latchkey serve` at log level warn (no request line) answers /healthz and /me, and the
// bare server answers a POST of _verify's body. Each part of the stack is then timed alone in this
// process (request id, the request line, metrics, the key verification, serialisation).
// Full mode writes its section of BENCHMARKS.md; --quick is a smoke run that writes nothing.
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { pino } from 'pino';
import { createLogger, createMetrics } from '../src/core/index.js';
import { createHttpRecorder } from '../src/http/metrics.js';
import { requestIdFor } from '../src/http/request-id.js';
import { requestCompletedFields } from '../src/http/request-log.js';
import { meSchema } from '../src/http/routes/me.js';
import { responseSerializerCompiler } from '../src/http/serializer.js';
import { createTestDatabase } from '../test/support/databases.js';
import { latchkeyEnv, newEncryptionKey, openLatchkey, type BenchLatchkey } from './apikeys-latchkey.js';
import { startBareServer, startLatchkeyServer, type BenchServer } from './apikeys-servers.js';
import { runAlternating, summarise, type HttpSettings, type LoadSummary, type MeasuredTarget } from './http-load.js';
import {
  describeMachine,
  formatCount,
  formatPercent,
  machineLine,
  markdownTable,
  parseMode,
  publish,
  textTable,
  type BenchMode,
} from './support.js';

const HEADING = '## HTTP stack (`npm run bench:http`)';

const FULL: HttpSettings & { partRounds: number; partMs: number } = { connections: 50, durationS: 10, warmupS: 3, runs: 2, partRounds: 10, partMs: 200 };
const QUICK: HttpSettings & { partRounds: number; partMs: number } = { connections: 50, durationS: 2, warmupS: 1, runs: 1, partRounds: 3, partMs: 100 };

const TARGETS = [
  { id: 'healthz', share: 0.7 },
  { id: 'me', share: 0.5 },
  { id: 'verify', share: 0.5 },
] as const;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

interface Part {
  name: string;
  /** Median over rounds of the mean time per call, in microseconds. */
  us: number;
}

/** Times `op` in rounds of `ms` and answers the median round's mean, in µs per call. */
function timePart(name: string, op: () => unknown, rounds: number, ms: number): Part {
  const means: number[] = [];
  for (let round = -1; round < rounds; round++) {
    let calls = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(ms * 1e6);
    let now = start;
    while (now < end) {
      for (let i = 0; i < 100; i++) op();
      calls += 100;
      now = process.hrtime.bigint();
    }
    if (round >= 0) means.push(Number(now - start) / 1e3 / calls);
  }
  means.sort((a, b) => a - b);
  return { name, us: means[Math.floor(means.length / 2)] as number };
}

async function timeAsyncPart(name: string, op: () => Promise<unknown>, rounds: number, ms: number): Promise<Part> {
  const means: number[] = [];
  for (let round = -1; round < rounds; round++) {
    let calls = 0;
    const start = process.hrtime.bigint();
    const end = start + BigInt(ms * 1e6);
    let now = start;
    while (now < end) {
      for (let i = 0; i < 100; i++) await op();
      calls += 100;
      now = process.hrtime.bigint();
    }
    if (round >= 0) means.push(Number(now - start) / 1e3 / calls);
  }
  means.sort((a, b) => a - b);
  return { name, us: means[Math.floor(means.length / 2)] as number };
}

/** Each part of the stack on its own, in this process, with what the server runs. */
async function timeParts(bench: BenchLatchkey, key: string, meBody: unknown, logFile: string, settings: typeof FULL): Promise<Part[]> {
  const { partRounds: rounds, partMs: ms } = settings;
  const request = {
    id: 'req_0123456789abcdef_1',
    method: 'GET',
    url: '/api/v1/me',
    is404: false,
    routeOptions: { url: '/api/v1/me' },
    headers: {},
  } as unknown as FastifyRequest;
  const reply = { statusCode: 200, elapsedTime: 0.42 } as unknown as FastifyReply;
  const logger = createLogger({ level: 'info', destination: pino.destination({ dest: logFile, sync: false }) });
  const record = createHttpRecorder(createMetrics());
  const route = { schema: meSchema, method: 'GET', url: '/api/v1/me' };
  const fast = responseSerializerCompiler(route) as (data: unknown) => string;
  const zod = zodSerializerCompiler(route) as (data: unknown) => string;
  const incoming = { headers: {} } as Parameters<typeof requestIdFor>[0];
  const parts = [
    timePart('request id (a new one)', () => requestIdFor(incoming), rounds, ms),
    timePart('request line: its fields and pino writing it to a file', () => logger.info(requestCompletedFields(request, reply), 'request completed'), rounds, ms),
    timePart('metrics: duration histogram and request counter', () => record(request, reply), rounds, ms),
    await timeAsyncPart('authentication: verifying a cached API key', () => bench.latchkey.apiKeys.verifier.verify(key, { consume: true }), rounds, ms),
    timePart('serialisation of the /me answer (fast-json-stringify from its zod schema)', () => fast(meBody), rounds, ms),
    timePart('for comparison: the same through zod, as before', () => zod(meBody), rounds, ms),
  ];
  logger.flush();
  return parts;
}

interface Result {
  summaries: Record<'bare' | 'healthz' | 'me' | 'verify' | 'healthzQuiet' | 'meQuiet' | 'barePost', LoadSummary>;
  parts: Part[];
}

async function run(settings: typeof FULL): Promise<Result> {
  const tdb = await createTestDatabase('sqlite');
  // The second server's own database: two processes serving one SQLite file would share its write lock.
  const quietDb = await createTestDatabase('sqlite');
  const servers: BenchServer[] = [];
  try {
    const encryptionKey = newEncryptionKey();
    const server = await startLatchkeyServer('latchkey serve', latchkeyEnv(tdb, encryptionKey), join(tdb.dataDir, 'serve.log'));
    servers.push(server);
    const quiet = await startLatchkeyServer('latchkey serve, log level warn', { ...latchkeyEnv(quietDb, encryptionKey), LATCHKEY_LOG_LEVEL: 'warn' }, join(quietDb.dataDir, 'serve.log'));
    servers.push(quiet);
    const bench = await openLatchkey(tdb, encryptionKey);
    const quietBench = await openLatchkey(quietDb, encryptionKey);
    try {
      const quietHeaders = { authorization: `ApiKey ${(await quietBench.mint('bench http, quiet')).key}` };
      const { key } = await bench.mint('bench http');
      const { key: checked } = await bench.mint('bench http, verified');
      const headers = { authorization: `ApiKey ${key}` };
      const me = await fetch(`${server.url}/api/v1/me`, { headers });
      if (!me.ok) throw new Error(`GET /api/v1/me answered ${me.status}: ${await me.text()}`);
      const meBody: unknown = await me.json();
      const verifyBody = JSON.stringify({ key: checked });
      const verified = await fetch(`${server.url}/api/v1/api-keys/_verify`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: verifyBody });
      const verifiedBody = (await verified.json()) as { valid?: boolean };
      if (!verified.ok || verifiedBody.valid !== true) throw new Error(`_verify answered ${verified.status}: ${JSON.stringify(verifiedBody)}`);

      const bare = await startBareServer(join(tdb.dataDir, 'bare.log'));
      servers.push(bare);
      const targets: Array<MeasuredTarget & { id: keyof Result['summaries'] }> = [
        { id: 'bare', name: 'bare Fastify route returning a constant', server: bare, path: '/bare', runs: [] },
        { id: 'healthz', name: 'Latchkey GET /healthz (no authentication)', server, path: '/healthz', runs: [] },
        { id: 'me', name: 'Latchkey GET /api/v1/me, API key', server, path: '/api/v1/me', headers, runs: [] },
        { id: 'healthzQuiet', name: 'Latchkey GET /healthz at log level warn (no request line)', server: quiet, path: '/healthz', runs: [] },
        { id: 'meQuiet', name: 'Latchkey GET /api/v1/me at log level warn (no request line)', server: quiet, path: '/api/v1/me', headers: quietHeaders, runs: [] },
        { id: 'barePost', name: 'bare Fastify POST of the same JSON body as _verify', server: bare, path: '/bare', method: 'POST', headers: { 'content-type': 'application/json' }, body: verifyBody, runs: [] },
        {
          id: 'verify',
          name: 'Latchkey POST /api/v1/api-keys/_verify, API key',
          server,
          path: '/api/v1/api-keys/_verify',
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json' },
          body: verifyBody,
          runs: [],
        },
      ];
      await runAlternating('http', targets, settings, log);
      log('http: timing each part of the stack in this process');
      const parts = await timeParts(bench, key, meBody, join(tdb.dataDir, 'parts.log'), settings);
      const summaries = Object.fromEntries(targets.map((t) => [t.id, summarise(t.name, t.runs)])) as Result['summaries'];
      return { summaries, parts };
    } finally {
      await bench.close();
      await quietBench.close();
    }
  } finally {
    for (const s of servers.reverse()) await s.stop();
    await tdb.dispose();
    await quietDb.dispose();
  }
}

const us = (x: number | undefined, digits = 1) => (x === undefined ? 'n/a' : `${x.toFixed(digits)} µs`);
const latency = (ms: number) => (ms < 1 ? '< 1 ms' : `${ms.toFixed(0)} ms`);

function tables(r: Result): { header: string[]; rows: string[][]; partHeader: string[]; partRows: string[][] } {
  const bare = r.summaries.bare;
  const header = ['target', 'requests/s', 'of bare', 'p50', 'p99', 'runs', 'server CPU / request', 'autocannon CPU / request'];
  const rows = Object.values(r.summaries).map((s) => [
    s.name,
    formatCount(s.requestsPerSec),
    formatPercent(s.requestsPerSec / bare.requestsPerSec),
    latency(s.p50Ms),
    latency(s.p99Ms),
    s.runs.map((x) => formatCount(x.requestsPerSec)).join(' / '),
    us(s.serverCpuUsPerRequest, 0),
    us(s.clientCpuUsPerRequest, 0),
  ]);
  const partHeader = ['part (timed alone, in the benchmark process)', 'per call', 'of the bare route\'s server CPU'];
  const partRows = r.parts.map((p) => [p.name, us(p.us, 2), bare.serverCpuUsPerRequest ? formatPercent(p.us / bare.serverCpuUsPerRequest) : 'n/a']);
  return { header, rows, partHeader, partRows };
}

function verdicts(r: Result): Array<{ target: string; measured: string; met: boolean }> {
  const bare = r.summaries.bare.requestsPerSec;
  const label = { healthz: 'GET /healthz', me: 'GET /api/v1/me', verify: 'POST /api/v1/api-keys/_verify' } as const;
  return TARGETS.map(({ id, share }) => {
    const measured = r.summaries[id].requestsPerSec / bare;
    return { target: `${label[id]} ≥ ${formatPercent(share)} of the bare route's requests/s`, measured: formatPercent(measured), met: measured >= share };
  });
}

function notes(r: Result): string[] {
  const s = r.summaries;
  const cpu = (x: LoadSummary) => x.serverCpuUsPerRequest ?? Number.NaN;
  const stack = cpu(s.healthz) - cpu(s.bare);
  const auth = cpu(s.me) - cpu(s.healthz);
  const verify = cpu(s.verify) - cpu(s.healthz);
  const part = (prefix: string) => r.parts.find((p) => p.name.startsWith(prefix))?.us ?? Number.NaN;
  const named = part('request id') + part('request line') + part('metrics');
  const lineHealthz = cpu(s.healthz) - cpu(s.healthzQuiet);
  const lineMe = cpu(s.me) - cpu(s.meQuiet);
  const share = (x: LoadSummary, of: LoadSummary) => formatPercent(x.requestsPerSec / of.requestsPerSec);
  return [
    `Both servers keep their one JavaScript thread busy, so requests/s follows the server's CPU per request (and autocannon, in the benchmark process, shares the 2 cores).`,
    `Latchkey's stack around every route (/healthz minus the bare route): ${us(stack)} a request. Of it, the request id, the request line and metrics, timed alone, are ${us(named)}; the rest is Fastify's hooks, the edge input check, the error and request-id headers and serialisation of the answer.`,
    `/me beyond /healthz (authentication and the route): ${us(auth)}; the cached key verification alone is ${us(part('authentication'))}, serialising the /me answer ${us(part('serialisation'))} (${us(part('for comparison'))} through zod, the serializer before this change).`,
    `_verify beyond /healthz (authentication, JSON body parsing and validation, one verification of the checked key, the route): ${us(verify)}. The bare route itself costs ${us(cpu(s.barePost) - cpu(s.bare))} more a request for a POST of the same body than for a GET; _verify is ${share(s.verify, s.barePost)} of that bare POST's requests/s.`,
    `The request line measured in the server (the same requests on a second server at log level warn, which writes none): ${us(lineHealthz)} a /healthz, ${us(lineMe)} a /me, against ${us(part('request line'))} timed alone. Without it /healthz is ${share(s.healthzQuiet, s.bare)} and /me ${share(s.meQuiet, s.bare)} of the bare route; an operator who logs requests elsewhere (a load balancer) can set LATCHKEY_LOG_LEVEL=warn for that.`,
  ];
}

function report(r: Result, machine: string, settings: typeof FULL, quick: boolean, date: string): string {
  const t = tables(r);
  const v = verdicts(r);
  const lines = [
    `Command: \`npm run bench:http\`${quick ? ' -- --quick' : ''}. Date: ${date}. Machine: ${machine}; 1-minute load average at the end ${(loadavg()[0] ?? 0).toFixed(2)}.`,
    '',
    `autocannon in the benchmark process, ${settings.connections} connections, ${settings.durationS} s per run, ${settings.runs} runs per target in alternating order after a ${settings.warmupS} s warm-up; \`latchkey serve\` on SQLite at the default log level (one request line per request, written to a file), and a second one on its own database at log level warn (no request line) for the two rows that say so; the bare route (GET, and a POST of _verify's body) in its own Fastify process with no logger.`,
    '',
    '### Targets',
    '',
    markdownTable(['target', 'measured', 'met'], v.map((x) => [x.target, x.measured, x.met ? 'met' : 'missed'])),
    '',
    '### Under load',
    '',
    markdownTable(t.header, t.rows),
    '',
    '### Each part of the stack',
    '',
    markdownTable(t.partHeader, t.partRows),
    '',
    '### Notes',
    '',
    ...notes(r).map((n) => `- ${n}`),
  ];
  return lines.join('\n');
}

async function main(mode: BenchMode): Promise<void> {
  const settings = mode.quick ? QUICK : FULL;
  log(`bench:http — mode: ${mode.label}`);
  const machine = machineLine(describeMachine());
  const result = await run(settings);
  const t = tables(result);
  publish(mode, HEADING, {
    text: [textTable(t.header, t.rows), textTable(t.partHeader, t.partRows)],
    verdicts: verdicts(result),
    notes: notes(result),
    section: () => report(result, machine, settings, mode.quick, new Date().toISOString().slice(0, 10)),
  });
}

await main(parseMode(process.argv.slice(2)));
