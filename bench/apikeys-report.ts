// Tables, verdicts and notes of `npm run bench:apikeys`, for the terminal and for BENCHMARKS.md.
import type { HttpResult, HttpSettings, LoadSummary } from './apikeys-http.js';
import type { RevocationResult, RevocationSettings } from './apikeys-revocation.js';
import type { UncachedResult, UncachedSettings } from './apikeys-uncached.js';
import type { VerifyResult, VerifySettings } from './apikeys-verify.js';
import { formatCount, formatMs, formatPercent, markdownTable, textTable, type OpStats } from './support.js';

export const TARGETS = {
  /** Cached verification at most this many times the floor's time per op. */
  verifyVsFloor: 3,
  /** GET /api/v1/me at least this share of the bare route's requests/s. */
  httpShare: 0.7,
  /** Uncached p99 with the big table at most this many times the small table's. */
  uncachedGrowth: 2,
  /** Revocation seen by the other process within this, p99. */
  revocationMs: 1000,
};

/** A part that could not run, and why. */
export interface Skipped {
  skipped: string;
}

export function isSkipped<T extends object>(x: T | Skipped): x is Skipped {
  return 'skipped' in x;
}

export interface Results {
  verify: VerifyResult;
  http: HttpResult | Skipped;
  uncached: UncachedResult[];
  uncachedSkipped: string | undefined;
  revocation: RevocationResult | Skipped;
}

export interface Context {
  quick: boolean;
  machine: string;
  date: string;
  loadAtEnd: number;
  verify: VerifySettings;
  http: HttpSettings;
  uncached: UncachedSettings & { rounds: number; sizes: readonly number[] };
  revocation: RevocationSettings;
  versions: Record<string, string>;
}

interface Verdict {
  target: string;
  figure: string;
  met: boolean | undefined;
}

const times = (x: number) => `${x.toFixed(2)}×`;
const perOpMs = (s: OpStats) => 1000 / s.opsPerSec;
const dialectName = (d: string) => (d === 'sqlite' ? 'SQLite' : 'PostgreSQL');

// ---------------------------------------------------------------------------------------------
// Tables

const VERIFY_HEADER = ['in-process verification', 'ops/s', 'mean', 'p50', 'p99', 'ops timed', 'time vs floor', 'p50 vs floor'];

function verifyRows(v: VerifyResult): string[][] {
  return [v.floor, v.consumeFalse, v.consumeTrue, ...v.peers].map((s) => [
    s.name,
    formatCount(s.opsPerSec),
    formatMs(perOpMs(s)),
    formatMs(s.p50Ms),
    formatMs(s.p99Ms),
    formatCount(s.ops),
    times(perOpMs(s) / perOpMs(v.floor)),
    times(s.p50Ms / v.floor.p50Ms),
  ]);
}

const COMPONENT_HEADER = ['part of the verifier, one call', 'mean', 'p50', 'p99'];

function componentRows(v: VerifyResult): string[][] {
  return v.components.map((s) => [s.name, formatMs(perOpMs(s)), formatMs(s.p50Ms), formatMs(s.p99Ms)]);
}

/** `SQLite file (WAL, …)` from `better-auth verifyApiKey (SQLite file (WAL, …))`. */
const peerDatabase = (p: OpStats) => p.name.replace(/^better-auth verifyApiKey \((.*)\)$/, '$1');

const PEER_HEADER = ['Latchkey verify vs better-auth verifyApiKey', 'Latchkey ops/s', 'better-auth ops/s', 'Latchkey / better-auth'];

function peerRows(v: VerifyResult): string[][] {
  return v.peers.map((p) => [
    `verify(consume:true), cached, vs better-auth on ${peerDatabase(p)}`,
    formatCount(v.consumeTrue.opsPerSec),
    formatCount(p.opsPerSec),
    `${(v.consumeTrue.opsPerSec / p.opsPerSec).toFixed(0)}×`,
  ]);
}

const HTTP_HEADER = ['HTTP, autocannon', 'requests/s', 'of bare', 'latency p50', 'latency p99', 'runs', 'server CPU / request', 'autocannon CPU / request'];

/** autocannon reports latency in whole milliseconds. */
const latency = (ms: number) => (ms < 1 ? '< 1 ms' : `${ms.toFixed(0)} ms`);

function httpRows(h: HttpResult): string[][] {
  const us = (x: number | undefined) => (x === undefined ? 'n/a' : `${x.toFixed(0)} µs`);
  return [h.bare, h.me, h.healthz, h.meQuiet].map((s: LoadSummary) => [
    s.name,
    formatCount(s.requestsPerSec),
    formatPercent(s.requestsPerSec / h.bare.requestsPerSec),
    latency(s.p50Ms),
    latency(s.p99Ms),
    s.runs.map((r) => formatCount(r.requestsPerSec)).join(' / '),
    us(s.serverCpuUsPerRequest),
    us(s.clientCpuUsPerRequest),
  ]);
}

const UNCACHED_HEADER = [
  'uncached verification',
  'keys in table',
  'p50',
  'p99',
  'mean',
  'verifications',
  'p99 vs smallest table',
  'table size / database cache',
  'blocks read outside the cache, per verification',
  'table fill (not timed)',
];

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 10 * 2 ** 20 ? 1 : 0)} MiB`;

/** PostgreSQL blocks of api_keys read from outside shared buffers per verification (warm-up included). */
function blocksReadPerVerification(r: UncachedResult, warmup: number): number | undefined {
  const blocks = r.storage.blocks;
  return blocks === undefined ? undefined : blocks.read / (r.stats.ops + Math.min(warmup, r.realKeys));
}

function uncachedRows(results: readonly UncachedResult[], warmup: number): string[][] {
  return results.map((r) => {
    const base = results.find((x) => x.dialect === r.dialect && x.keys === Math.min(...results.filter((y) => y.dialect === r.dialect).map((y) => y.keys)));
    return [
      dialectName(r.dialect),
      formatCount(r.keys),
      formatMs(r.stats.p50Ms),
      formatMs(r.stats.p99Ms),
      formatMs(perOpMs(r.stats)),
      formatCount(r.stats.ops),
      base ? times(r.stats.p99Ms / base.stats.p99Ms) : 'n/a',
      `${mib(r.storage.tableBytes)} / ${mib(r.storage.cacheBytes)}`,
      blocksReadPerVerification(r, warmup)?.toFixed(2) ?? 'not counted',
      formatMs(r.setupMs),
    ];
  });
}

const REVOCATION_HEADER = ['revocation seen by the other server', 'p50', 'p99', 'max'];

function revocationRows(r: RevocationResult): string[][] {
  const row = (name: string, s: { p50: number; p99: number; max: number }) => [name, formatMs(s.p50), formatMs(s.p99), formatMs(s.max)];
  return [
    row(`revoke call → B's first 401 (${r.revocations} revocations)`, r.totalMs),
    row('revoke answered (durable) → B\'s first 401', r.afterAckMs),
    [r.via === 'http' ? 'the DELETE call on A itself' : 'the revoke call itself (service)', formatMs(r.revokeCallMs.p50), formatMs(r.revokeCallMs.p99), ''],
  ];
}

// ---------------------------------------------------------------------------------------------
// Verdicts and notes

export function verdicts(res: Results): Verdict[] {
  const v = res.verify;
  const out: Verdict[] = [];
  for (const s of [v.consumeFalse, v.consumeTrue]) {
    const ratio = perOpMs(s) / perOpMs(v.floor);
    const p50 = s.p50Ms / v.floor.p50Ms;
    out.push({
      target: `${s.name.replace(/^Latchkey /, '')}: within ${TARGETS.verifyVsFloor}× the floor (mean time per op and p50)`,
      figure: `${times(ratio)} mean, ${times(p50)} p50`,
      met: ratio <= TARGETS.verifyVsFloor && p50 <= TARGETS.verifyVsFloor,
    });
  }
  if (isSkipped(res.http)) {
    out.push({ target: `GET /api/v1/me ≥ ${formatPercent(TARGETS.httpShare)} of the bare route's requests/s`, figure: 'not measured', met: undefined });
  } else {
    const share = res.http.me.requestsPerSec / res.http.bare.requestsPerSec;
    out.push({ target: `GET /api/v1/me ≥ ${formatPercent(TARGETS.httpShare)} of the bare route's requests/s`, figure: formatPercent(share), met: share >= TARGETS.httpShare });
  }
  for (const dialect of ['sqlite', 'postgres']) {
    const rows = res.uncached.filter((r) => r.dialect === dialect).sort((a, b) => a.keys - b.keys);
    const small = rows[0];
    const big = rows[rows.length - 1];
    const target = `uncached p99 on ${dialectName(dialect)}: ${formatCount(big?.keys ?? 0)} keys ≤ ${TARGETS.uncachedGrowth}× ${formatCount(small?.keys ?? 0)} keys`;
    if (!small || !big || small === big) {
      out.push({ target, figure: 'not measured', met: undefined });
      continue;
    }
    const growth = big.stats.p99Ms / small.stats.p99Ms;
    out.push({ target, figure: `${times(growth)} (${formatMs(big.stats.p99Ms)} vs ${formatMs(small.stats.p99Ms)})`, met: growth <= TARGETS.uncachedGrowth });
  }
  if (isSkipped(res.revocation)) {
    out.push({ target: `revocation seen by the other server, p99 < ${formatMs(TARGETS.revocationMs)}`, figure: 'not measured', met: undefined });
  } else {
    const p99 = res.revocation.totalMs.p99;
    out.push({ target: `revocation seen by the other server, p99 < ${formatMs(TARGETS.revocationMs)}`, figure: formatMs(p99), met: p99 < TARGETS.revocationMs });
  }
  return out;
}

function verdictRows(v: readonly Verdict[], loud: boolean): string[][] {
  return v.map((x) => [x.target, x.figure, x.met === undefined ? 'not measured' : x.met ? 'met' : loud ? 'MISSED' : 'missed']);
}

/** What the figures say, worked out from this run's numbers. */
export function notes(res: Results, ctx: Context): string[] {
  const out: string[] = [];
  const v = res.verify;
  const [parse, hash, owner] = v.components as [OpStats, OpStats, OpStats];
  const floor = perOpMs(v.floor);
  const rest = (s: OpStats) => perOpMs(s) - perOpMs(parse) - perOpMs(hash) - perOpMs(owner);
  const verifyMissed = [v.consumeFalse, v.consumeTrue].filter(
    (s) => perOpMs(s) / floor > TARGETS.verifyVsFloor || s.p50Ms / v.floor.p50Ms > TARGETS.verifyVsFloor,
  );
  out.push(
    `Cached verification: floor ${formatMs(floor)} per op; verify(consume:false) ${formatMs(perOpMs(v.consumeFalse))}` +
      ` = parseApiKey ${formatMs(perOpMs(parse))} + keyed hash and constant-time compare ${formatMs(perOpMs(hash))}` +
      ` + the owner's permissions from the authorizer's cache ${formatMs(perOpMs(owner))} (two nested async functions, awaited)` +
      ` + ${formatMs(rest(v.consumeFalse))} for the rest (verify's own promise, the key-cache and pepper lookups, expiry and` +
      ` revocation checks, the result object). consume:true adds ${formatMs(perOpMs(v.consumeTrue) - perOpMs(v.consumeFalse))}` +
      ' for the usage gate: the last-used note (a timestamp kept in memory and written in batches; a key without limits skips the awaited admit).' +
      (verifyMissed.length === 0
        ? ''
        : ` Missed for ${verifyMissed.map((s) => s.name.replace(/^Latchkey /, '')).join(' and ')}: the keyed hash is` +
          ` ${formatPercent(perOpMs(hash) / perOpMs(verifyMissed[0] as OpStats))} of its time; the awaited async calls around it` +
          ' (verify, the authorizer), not the cryptography, set the figure.'),
  );
  const fileAndMemory = v.peers.map((p) => `${formatCount(v.consumeTrue.opsPerSec / p.opsPerSec)}× (${peerDatabase(p)})`);
  out.push(
    `better-auth ${ctx.versions['better-auth'] ?? ''} with @better-auth/api-key, rate limiting off (its default is 10 requests a day): Latchkey's cached verify(consume:true) does` +
      ` ${fileAndMemory.join(', ')} its verifications per second. better-auth hashes the whole key with SHA-256 (unkeyed), looks the hash up` +
      ' in the database and then writes the row twice (lastRequest, then updatedAt), each write its own commit; on the database file each' +
      ' commit waits for an fsync (WAL with synchronous FULL, the settings of Latchkey\'s own SQLite file), in memory none does. It has no' +
      ' in-process cache in its default database storage. Latchkey reads a key\'s row once per cache bound and writes last-used times in' +
      ' batches, off the request path.',
  );
  if (!isSkipped(res.http)) out.push(...httpNotes(res.http, ctx, v));
  if (res.uncached.length > 0) {
    const u = ctx.uncached;
    out.push(
      `Uncached verification: each timed call is verify(key), with its defaults, of a key its verifier has not cached, so it` +
        ` reads the key's row by primary key (one SELECT through Kysely), hashes and checks it; the tenant pepper (per process by` +
        ` design) and the owner's permissions (per user) stay cached. Each verification also notes the key as used: the usage gate` +
        ' writes those last-used times once a second in one batched UPDATE, as a server does.' +
        " Tables hold real keys (hashed with the tenant's pepper) among filler rows of the same shape," +
        ` written in multi-row inserts of 1,000 (SQLite) or 2,000 (PostgreSQL) rows, 50,000 per transaction; PostgreSQL then gets` +
        ` VACUUM ANALYZE, as autovacuum would. ${formatCount(u.measured)} timed verifications per table after ${formatCount(u.warmup)} untimed,` +
        ` in ${u.rounds} rounds alternating between the table sizes, each round with a fresh verifier; the big tables hold enough real` +
        ' keys that none is verified twice. Both databases run on this machine, PostgreSQL over TCP on 127.0.0.1.',
    );
    for (const dialect of ['sqlite', 'postgres']) {
      const rows = res.uncached.filter((r) => r.dialect === dialect).sort((a, b) => a.keys - b.keys);
      const small = rows[0];
      const big = rows[rows.length - 1];
      if (!small || !big || small === big) continue;
      const missed = big.stats.p99Ms / small.stats.p99Ms > TARGETS.uncachedGrowth;
      const bigReads = blocksReadPerVerification(big, ctx.uncached.warmup);
      const smallReads = blocksReadPerVerification(small, ctx.uncached.warmup);
      const cache =
        dialect === 'postgres'
          ? ` The big table with its indexes is ${mib(big.storage.tableBytes)} against ${mib(big.storage.cacheBytes)} of shared_buffers` +
            (bigReads !== undefined && smallReads !== undefined
              ? `: its verifications read ${bigReads.toFixed(2)} blocks each from outside shared buffers (from the operating system's` +
                ` page cache: a system call and a buffer eviction each), the small table's ${smallReads.toFixed(2)}.`
              : '.')
          : ` The big database file is ${mib(big.storage.tableBytes)} against SQLite's ${mib(big.storage.cacheBytes)} page cache per` +
            " connection, so most of its pages come through the operating system's page cache."
      out.push(
        `${missed ? 'Missed on' : 'On'} ${dialectName(dialect)}: p99 ${formatMs(big.stats.p99Ms)} with ${formatCount(big.keys)} keys against` +
          ` ${formatMs(small.stats.p99Ms)} with ${formatCount(small.keys)}, medians ${formatMs(big.stats.p50Ms)} and` +
          ` ${formatMs(small.stats.p50Ms)}: the typical lookup barely grows (a primary-key B-tree a level or two deeper).` +
          cache +
          (missed
            ? ' Those reads make the tail, with the last-used write-back (its batched UPDATE touches as many scattered rows as keys were' +
              ' verified in the second before) and other work on the 2 cores.'
            : ' The tail is where those reads, the last-used write-back and other work on the 2 cores land, so this ratio moves with the' +
              " machine's load."),
      );
    }
  }
  if (!isSkipped(res.revocation)) {
    const r = res.revocation;
    out.push(
      `Revocation: servers A and B on one PostgreSQL schema with one master key; each key is first accepted by B (so B has it` +
        ` cached), then revoked through ${r.via === 'http' ? 'DELETE /api/v1/api-keys/{id} on A' : 'apiKeys.service.revoke in the benchmark process (A had no revoke route)'},` +
        ` while B is polled with sequential GET /api/v1/me until its first 401 (${r.pollsPerRevocation.toFixed(1)} polls per revocation, one poll` +
        ` ${formatMs(r.pollMs)}: the resolution of the figure). B learns of it through LISTEN/NOTIFY; polling of the invalidation log` +
        ' (every 2.5 s with the default 5 s bound) only covers a lost notification.' +
        (r.totalMs.p99 < TARGETS.revocationMs ? '' : ' Missed: see the max; a notification lost or late falls back to the 5 s bound.'),
    );
  }
  out.push(
    `Load: the 1-minute load average was ${ctx.machine.match(/load average at start ([\d.]+)/)?.[1] ?? '?'} at the start and` +
      ` ${ctx.loadAtEnd.toFixed(2)} at the end; other engineers' test runs share these 2 cores, which shows most in p99 figures.`,
  );
  return out;
}

function httpNotes(h: HttpResult, ctx: Context, v: VerifyResult): string[] {
  const share = (s: LoadSummary) => formatPercent(s.requestsPerSec / h.bare.requestsPerSec);
  const out = [
    `HTTP: ${ctx.http.connections} connections, ${ctx.http.durationS} s per run, ${ctx.http.runs} run(s) per target, the order reversed` +
      ` every other run, after a ${ctx.http.warmupS} s warm-up each; requests/s is the total of 2xx answers over the total time (any` +
      ' non-2xx answer or error fails the run). The servers are child processes of the same Node (loaded through tsx) and autocannon' +
      ' runs in the benchmark process: on this 2-core machine server and load generator share the cores, so every figure is lower than' +
      ` with a core to spare for the client. /me answers ${h.meFields.join(', ')} as JSON. Latchkey logs one line per request at its default` +
      ' level (info; to a file here) and records request metrics. The runs column shows how far one figure moves between runs on this' +
      ' shared machine.',
  ];
  const cpu = [h.bare, h.healthz, h.me, h.meQuiet].map((s) => s.serverCpuUsPerRequest);
  const [bare, healthz, me, quiet] = cpu;
  if (bare === undefined || healthz === undefined || me === undefined || quiet === undefined) return out;
  const us = (x: number) => `${x.toFixed(0)} µs`;
  const needed = bare / TARGETS.httpShare;
  out.push(
    `Where the server's time goes (CPU per request, from /proc, user + system): bare Fastify ${us(bare)}; Latchkey's /healthz ${us(healthz)}` +
      ` (${share(h.healthz)} of the bare route's requests/s: request ids, the request log line, metrics, zod response serialisation, no` +
      ` authentication); /me ${us(me)}, so authentication and the route add ${us(me - healthz)}, of which the verification itself is` +
      ` ${formatMs(perOpMs(v.consumeTrue))} in process. Logging at warn instead of info (no line per request) takes /me to ${us(quiet)}` +
      ` and ${share(h.meQuiet)} of the bare route: the request log line costs about ${us(me - quiet)} a request.` +
      (h.me.requestsPerSec / h.bare.requestsPerSec >= TARGETS.httpShare
        ? ''
        : ` Missed: both servers keep their main thread busy, so requests/s follows CPU per request; at ${formatPercent(TARGETS.httpShare)}` +
          ` of the bare route /me would have to cost about ${us(needed)}. Of the ${us(me - bare)} it costs beyond the bare route,` +
          ` ${us(healthz - bare)} is Latchkey's HTTP stack around every route (the list above) and ${us(me - healthz)} authentication and` +
          ` the route; the API key verification is ${formatMs(perOpMs(v.consumeTrue))} of that: the stack and the route, not the` +
          ' verification, limit the figure.'),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output

export function terminalReport(res: Results, ctx: Context): string {
  const v = verdicts(res);
  const parts = [
    '',
    `bench:apikeys — mode: ${ctx.quick ? 'QUICK (smoke run, smaller counts; figures not recorded)' : 'full'}`,
    `Machine: ${ctx.machine}`,
    '',
    textTable(VERIFY_HEADER, verifyRows(res.verify)),
    '',
    textTable(COMPONENT_HEADER, componentRows(res.verify)),
    '',
    textTable(PEER_HEADER, peerRows(res.verify)),
    '',
    isSkipped(res.http) ? `HTTP: not measured (${res.http.skipped})` : textTable(HTTP_HEADER, httpRows(res.http)),
    '',
    res.uncached.length > 0 ? textTable(UNCACHED_HEADER, uncachedRows(res.uncached, ctx.uncached.warmup)) : 'uncached: not measured',
    ...(res.uncachedSkipped ? [`PostgreSQL uncached: not measured (${res.uncachedSkipped})`] : []),
    '',
    isSkipped(res.revocation) ? `revocation: not measured (${res.revocation.skipped})` : textTable(REVOCATION_HEADER, revocationRows(res.revocation)),
    '',
    textTable(['target', 'figure', 'result'], verdictRows(v, true)),
    '',
    ...notes(res, ctx).map((n) => `* ${n}`),
    '',
  ];
  return parts.join('\n');
}

export function markdownSection(res: Results, ctx: Context): string {
  const v = verdicts(res);
  const c = ctx.verify;
  return [
    `Command: \`npm run bench:apikeys\` (full mode). Date: ${ctx.date}.`,
    '',
    `Machine: ${ctx.machine}.`,
    '',
    `Versions: ${Object.entries(ctx.versions).map(([name, version]) => `${name} ${version}`).join(', ')}.`,
    '',
    '### Targets',
    '',
    markdownTable(['target', 'figure', 'result'], verdictRows(v, false)),
    '',
    '### In-process verification of a valid, cached key',
    '',
    `The floor is one Map lookup by key id plus one HMAC-SHA-256 of the 43-character secret under a 32-byte key (node:crypto).` +
      ` ${c.rounds} interleaved rounds of ${c.roundMs} ms per contender after a ${c.warmupMs} ms warm-up; every call is timed on its own` +
      ' and checked (Latchkey answers `valid`, better-auth `valid: true`). "Time vs floor" is mean time per op over the floor\'s.',
    '',
    markdownTable(VERIFY_HEADER, verifyRows(res.verify)),
    '',
    markdownTable(COMPONENT_HEADER, componentRows(res.verify)),
    '',
    markdownTable(PEER_HEADER, peerRows(res.verify)),
    '',
    '### Over HTTP (autocannon)',
    '',
    isSkipped(res.http) ? `Not measured: ${res.http.skipped}.` : markdownTable(HTTP_HEADER, httpRows(res.http)),
    '',
    '### Uncached verification',
    '',
    res.uncached.length > 0 ? markdownTable(UNCACHED_HEADER, uncachedRows(res.uncached, ctx.uncached.warmup)) : 'Not measured.',
    ...(res.uncachedSkipped ? ['', `PostgreSQL not measured: ${res.uncachedSkipped}.`] : []),
    '',
    '### Revocation propagation (two servers, one PostgreSQL)',
    '',
    isSkipped(res.revocation) ? `Not measured: ${res.revocation.skipped}.` : markdownTable(REVOCATION_HEADER, revocationRows(res.revocation)),
    '',
    '### Notes',
    '',
    ...notes(res, ctx).map((n) => `- ${n}`),
  ].join('\n');
}
