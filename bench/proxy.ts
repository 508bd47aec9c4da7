// `npm run bench:proxy [-- --quick]`: a proxied GET through Latchkey next to the same GET sent
// straight to the upstream, same run. The upstream is its own Fastify process on 127.0.0.1
// (bench/proxy-upstream.ts) answering a 1 KiB and a 1 MiB body to the right API key; Latchkey is a
// real `latchkey serve` (SQLite, default log level) with a generic `http` connector holding that
// key, called with an API key of its own; the floor is a bare Fastify + undici proxy in front of the
// same upstream (bench/proxy-floor.ts). autocannon (in this process) loads each target in turn,
// alternating the order; then one connection at a time measures the latency a proxied call adds.
// CPU per request is the server's plus the upstream's, from /proc.
// Full mode writes its section of BENCHMARKS.md; --quick is a smoke run that writes nothing.
import { randomBytes } from 'node:crypto';
import { Agent, request as httpRequest } from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase } from '../test/support/databases.js';
import { freePort, ROOT } from '../test/support/cli.js';
import { latchkeyEnv, newEncryptionKey, openLatchkey } from './apikeys-latchkey.js';
import { spawnLogged, startLatchkeyServer, type BenchServer } from './apikeys-servers.js';
import { processCpuSeconds, runAlternating, summarise, type HttpSettings, type LoadRun, type LoadSummary, type LoadTarget, type MeasuredTarget } from './http-load.js';
import {
  describeMachine,
  formatCount,
  formatPercent,
  machineLine,
  markdownTable,
  parseMode,
  percentile,
  sortedCopy,
  publish,
  textTable,
  type BenchMode,
} from './support.js';

const HEADING = '## Proxy (`npm run bench:proxy`)';

interface Settings extends HttpSettings {
  /** Sequential requests per target for the added-latency figures. */
  latencyRequests: number;
}
const FULL: Settings = { connections: 50, durationS: 10, warmupS: 3, runs: 2, latencyRequests: 2_000 };
const QUICK: Settings = { connections: 50, durationS: 2, warmupS: 1, runs: 1, latencyRequests: 200 };

const TSX = import.meta.resolve('tsx');
/** Connections for the 1 MiB targets (each keeps one request in flight). */
const BODY_CONNECTIONS = 8;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

type Size = '1k' | '1m';
type TargetId = `${'direct' | 'floor' | 'proxied'}-${Size}`;
const directOf = (id: TargetId) => id.replace(/^(floor|proxied)/, 'direct') as TargetId;

interface Latency {
  p50Ms: number;
  p99Ms: number;
}

interface Result {
  summaries: Record<TargetId, LoadSummary>;
  latency: Record<TargetId, Latency>;
}

/**
 * Large bodies: autocannon reads them slower than a server writes them, so it would measure
 * itself. Here each of `connections` keeps one kept-alive request in flight and only counts the
 * bytes of the body; the same CPU-per-request accounting as autocannon's runs.
 */
async function bodyLoad(target: LoadTarget, connections: number, durationS: number): Promise<LoadRun> {
  const pids = [target.server, ...(target.also ?? [])].map((s) => s.child.pid);
  const cpu = () => pids.reduce<number | undefined>((sum, pid) => {
    const seconds = processCpuSeconds(pid);
    return sum === undefined || seconds === undefined ? undefined : sum + seconds;
  }, 0);
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const url = `${target.server.url}${target.path}`;
  const latencies: number[] = [];
  let bytes = 0;
  const serverBefore = cpu();
  const clientBefore = process.cpuUsage();
  const start = process.hrtime.bigint();
  const end = start + BigInt(durationS * 1e9);
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const began = process.hrtime.bigint();
      const req = httpRequest(url, { agent, headers: target.headers ?? {} }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${url} answered ${res.statusCode}`));
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => {
          latencies.push(Number(process.hrtime.bigint() - began) / 1e6);
          resolve();
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (process.hrtime.bigint() < end) await one();
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const client = process.cpuUsage(clientBefore);
  const serverAfter = cpu();
  agent.destroy();
  const sorted = sortedCopy(latencies);
  const requests = latencies.length;
  return {
    requestsPerSec: requests / seconds,
    requests,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    serverCpuUsPerRequest: serverBefore === undefined || serverAfter === undefined ? undefined : ((serverAfter - serverBefore) * 1e6) / requests,
    clientCpuUsPerRequest: (client.user + client.system) / requests,
    bytesPerSec: bytes / seconds,
  };
}

/** `count` GETs one after another on one kept-alive connection; the body is read to its end. */
async function sequential(url: string, headers: Record<string, string>, count: number): Promise<Latency> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  try {
    for (let i = -Math.ceil(count / 10); i < count; i++) {
      const start = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        const req = httpRequest(url, { agent, headers }, (res) => {
          if (res.statusCode !== 200) reject(new Error(`GET ${url} answered ${res.statusCode}`));
          res.on('data', () => {});
          res.on('end', resolve);
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
      if (i >= 0) times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
  } finally {
    agent.destroy();
  }
  const sorted = sortedCopy(times);
  return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}

async function run(settings: Settings): Promise<Result> {
  const tdb = await createTestDatabase('sqlite');
  const servers: BenchServer[] = [];
  try {
    const upstreamKey = randomBytes(24).toString('base64url');
    const upstreamPort = await freePort();
    const upstream = await spawnLogged(
      'bench upstream',
      ['--import', TSX, `${ROOT}bench/proxy-upstream.ts`, String(upstreamPort)],
      { BENCH_UPSTREAM_KEY: upstreamKey },
      join(tdb.dataDir, 'upstream.log'),
      upstreamPort,
      '/ready',
    );
    servers.push(upstream);
    const floorPort = await freePort();
    const floor = await spawnLogged(
      'bench proxy floor',
      ['--import', TSX, `${ROOT}bench/proxy-floor.ts`, String(floorPort), upstream.url],
      { BENCH_UPSTREAM_KEY: upstreamKey },
      join(tdb.dataDir, 'floor.log'),
      floorPort,
      '/ready',
    );
    servers.push(floor);
    const encryptionKey = newEncryptionKey();
    const env = { ...latchkeyEnv(tdb, encryptionKey), LATCHKEY_ALLOW_INSECURE_LOOPBACK: '1', LATCHKEY_EGRESS_ALLOW: '127.0.0.1/32' };
    const server = await startLatchkeyServer('latchkey serve', env, join(tdb.dataDir, 'serve.log'));
    servers.push(server);
    const bench = await openLatchkey(tdb, encryptionKey);
    try {
      const { key } = await bench.mint('bench proxy');
      // Through the server's API: it runs with --allow-insecure-loopback, this process does not.
      const created = await fetch(`${server.url}/api/v1/connectors`, {
        method: 'POST',
        headers: { authorization: `ApiKey ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'bench upstream',
          provider: 'http',
          authType: 'api_key',
          config: { apiBaseUrl: upstream.url, in: 'header', name: 'X-Api-Key' },
          secrets: { apiKeyValue: upstreamKey },
        }),
      });
      const connector = (await created.json()) as { id?: string };
      if (created.status !== 201 || connector.id === undefined) throw new Error(`creating the connector answered ${created.status}: ${JSON.stringify(connector)}`);
      const proxiedHeaders = { authorization: `ApiKey ${key}` };
      const directHeaders = { 'x-api-key': upstreamKey };
      const path = (size: Size, proxied: boolean) => (proxied ? `/api/v1/connectors/${connector.id}/proxy/${size}` : `/${size}`);
      for (const [label, url, headers] of [
        ['direct', `${upstream.url}${path('1k', false)}`, directHeaders],
        ['floor', `${floor.url}/proxy/1k`, {}],
        ['proxied', `${server.url}${path('1k', true)}`, proxiedHeaders],
      ] as const) {
        const res = await fetch(url, { headers });
        const body = await res.arrayBuffer();
        if (res.status !== 200 || body.byteLength !== 1024) throw new Error(`${label} GET answered ${res.status} with ${body.byteLength} bytes`);
      }

      const targets: Array<MeasuredTarget & { id: TargetId }> = [];
      for (const size of ['1k', '1m'] as const) {
        const label = size === '1k' ? '1 KiB' : '1 MiB';
        targets.push(
          { id: `direct-${size}`, name: `direct GET of ${label} from the upstream`, server: upstream, path: path(size, false), headers: directHeaders, runs: [] },
          { id: `floor-${size}`, name: `GET of ${label} through a bare Fastify + undici proxy (the floor)`, server: floor, also: [upstream], path: `/proxy/${size}`, runs: [] },
          {
            id: `proxied-${size}`,
            name: `proxied GET of ${label} through Latchkey`,
            server,
            also: [upstream],
            path: path(size, true),
            headers: proxiedHeaders,
            runs: [],
          },
        );
      }
      for (const t of targets) {
        if (!t.id.endsWith('1m')) continue;
        t.connections = BODY_CONNECTIONS;
        t.loader = bodyLoad;
      }
      await runAlternating('proxy', targets, settings, log);
      const latency = {} as Result['latency'];
      for (const t of targets) {
        log(`proxy: latency of ${t.name}, ${formatCount(settings.latencyRequests)} requests one at a time`);
        latency[t.id] = await sequential(`${t.server.url}${t.path}`, t.headers ?? {}, settings.latencyRequests);
      }
      const summaries = Object.fromEntries(targets.map((t) => [t.id, summarise(t.name, t.runs)])) as Result['summaries'];
      return { summaries, latency };
    } finally {
      await bench.close();
    }
  } finally {
    for (const s of servers.reverse()) await s.stop();
    await tdb.dispose();
  }
}

const us = (x: number | undefined) => (x === undefined ? 'n/a' : `${x.toFixed(0)} µs`);
const ms = (x: number) => `${x.toFixed(2)} ms`;
const mibps = (bytesPerSec: number) => `${(bytesPerSec / 1024 / 1024).toFixed(0)} MiB/s`;

function tables(r: Result) {
  const header = ['target', 'requests/s', 'throughput', 'of direct', 'p50 (load)', 'p99 (load)', 'runs', 'CPU / request (Latchkey + upstream)'];
  const rows = (Object.keys(r.summaries) as TargetId[]).map((id) => {
    const s = r.summaries[id];
    const direct = r.summaries[directOf(id)];
    const share = id.endsWith('1m') ? s.bytesPerSec / direct.bytesPerSec : s.requestsPerSec / direct.requestsPerSec;
    return [
      s.name,
      formatCount(s.requestsPerSec),
      mibps(s.bytesPerSec),
      formatPercent(share),
      `${s.p50Ms.toFixed(0)} ms`,
      `${s.p99Ms.toFixed(0)} ms`,
      s.runs.map((x) => formatCount(x.requestsPerSec)).join(' / '),
      us(s.serverCpuUsPerRequest),
    ];
  });
  const latencyHeader = ['one request at a time', 'direct p50', 'proxied p50', 'added p50', 'direct p99', 'proxied p99', 'added p99'];
  const latencyRows = (['1k', '1m'] as const).map((size) => {
    const d = r.latency[`direct-${size}`];
    const p = r.latency[`proxied-${size}`];
    return [size === '1k' ? 'GET of 1 KiB' : 'GET of 1 MiB', ms(d.p50Ms), ms(p.p50Ms), ms(p.p50Ms - d.p50Ms), ms(d.p99Ms), ms(p.p99Ms), ms(p.p99Ms - d.p99Ms)];
  });
  return { header, rows, latencyHeader, latencyRows };
}

function verdicts(r: Result): Array<{ target: string; measured: string; met: boolean }> {
  const s = r.summaries;
  const small = s['proxied-1k'].requestsPerSec / s['direct-1k'].requestsPerSec;
  const large = s['proxied-1m'].bytesPerSec / s['direct-1m'].bytesPerSec;
  return [
    { target: 'proxied 1 KiB GET ≥ 60% of direct requests/s', measured: formatPercent(small), met: small >= 0.6 },
    { target: 'proxied 1 MiB GET ≥ 80% of direct throughput', measured: formatPercent(large), met: large >= 0.8 },
  ];
}

function notes(r: Result): string[] {
  const s = r.summaries;
  const cpu = (id: TargetId) => s[id].serverCpuUsPerRequest ?? Number.NaN;
  const ofFloor = (size: Size) =>
    size === '1k' ? s['proxied-1k'].requestsPerSec / s['floor-1k'].requestsPerSec : s['proxied-1m'].bytesPerSec / s['floor-1m'].bytesPerSec;
  const floorShare = (size: Size) =>
    size === '1k' ? s['floor-1k'].requestsPerSec / s['direct-1k'].requestsPerSec : s['floor-1m'].bytesPerSec / s['direct-1m'].bytesPerSec;
  return [
    `The floor (a bare Fastify route forwarding with undici through at most 10 connections, as Latchkey's per-connector limit allows; no authentication, audit, log line, metrics or egress check) reaches ${formatPercent(floorShare('1k'))} of direct requests/s for 1 KiB and ${formatPercent(floorShare('1m'))} of direct throughput for 1 MiB: what any Node proxy can reach here. Latchkey is ${formatPercent(ofFloor('1k'))} and ${formatPercent(ofFloor('1m'))} of the floor.`,
    `Floor CPU per request (floor + upstream): ${us(cpu('floor-1k'))} for 1 KiB, ${us(cpu('floor-1m'))} for 1 MiB; Latchkey beyond the floor: ${us(cpu('proxied-1k') - cpu('floor-1k'))} and ${us(cpu('proxied-1m') - cpu('floor-1m'))}.`,
    'Under load every process is CPU-bound on the 2 cores (autocannon, Latchkey and the upstream), so a proxied request pays for two HTTP exchanges on the same cores a direct one pays one for.',
    `Latchkey's own CPU per proxied 1 KiB GET (proxied minus direct, per request): ${us(cpu('proxied-1k') - cpu('direct-1k'))}: authenticating the caller, the connector from this process's cache, the outbound request through the egress policy, the audit row, streaming the answer back.`,
    `Per proxied 1 MiB GET: ${us(cpu('proxied-1m') - cpu('direct-1m'))}, mostly copying the body through (the answer is streamed, never buffered whole).`,
  ];
}

function report(r: Result, machine: string, settings: Settings, date: string): string {
  const t = tables(r);
  return [
    `Command: \`npm run bench:proxy\`. Date: ${date}. Machine: ${machine}; 1-minute load average at the end ${(loadavg()[0] ?? 0).toFixed(2)}.`,
    '',
    `1 KiB: autocannon in the benchmark process, ${settings.connections} connections; 1 MiB: ${BODY_CONNECTIONS} kept-alive connections of node:http in the benchmark process counting body bytes (autocannon reads large bodies slower than the upstream writes them). ${settings.durationS} s per run, ${settings.runs} runs per target in alternating order after a ${settings.warmupS} s warm-up; then ${formatCount(settings.latencyRequests)} requests one at a time per target on one kept-alive connection for the added latency. \`latchkey serve\` on SQLite at the default log level, a generic \`http\` connector with an API key in a header; the upstream is a Fastify process on 127.0.0.1 checking that key; the floor is a bare Fastify + undici proxy in its own process (bench/proxy-floor.ts).`,
    '',
    '### Targets',
    '',
    markdownTable(['target', 'measured', 'met'], verdicts(r).map((x) => [x.target, x.measured, x.met ? 'met' : 'missed'])),
    '',
    '### Under load',
    '',
    markdownTable(t.header, t.rows),
    '',
    '### Added latency',
    '',
    markdownTable(t.latencyHeader, t.latencyRows),
    '',
    '### Notes',
    '',
    ...notes(r).map((n) => `- ${n}`),
  ].join('\n');
}

async function main(mode: BenchMode): Promise<void> {
  const settings = mode.quick ? QUICK : FULL;
  log(`bench:proxy — mode: ${mode.label}`);
  const machine = machineLine(describeMachine());
  const result = await run(settings);
  const t = tables(result);
  publish(mode, HEADING, {
    text: [textTable(t.header, t.rows), textTable(t.latencyHeader, t.latencyRows)],
    verdicts: verdicts(result),
    notes: notes(result),
    section: () => report(result, machine, settings, new Date().toISOString().slice(0, 10)),
  });
}

await main(parseMode(process.argv.slice(2)));
