// Tables, verdicts and notes of `npm run bench:tokens`, for the terminal and for BENCHMARKS.md.
import type { DialectName } from '../src/db/index.js';
import type { FreshDialect, FreshResult, FreshSettings } from './tokens-fresh.js';
import type { InProcessResult, ProcessesResult, ProcessSettings, StampedeRun, StampedeSettings } from './tokens-stampede.js';
import { formatCount, formatMs, markdownTable, percentile, sortedCopy, textTable, type OpStats } from './support.js';

export const TARGETS = {
  /** getAccessToken on a fresh token at most this many times the floor's time per op (mean and p50). */
  freshVsFloor: 5,
  /** Refresh requests reaching the authorization server per stampede. */
  refreshes: 1,
};

export interface Results {
  fresh: FreshResult;
  inProcess: InProcessResult[];
  /** Undefined when PostgreSQL was not reachable (quick mode only). */
  processes: ProcessesResult | undefined;
  skipped: string | undefined;
}

export interface Context {
  quick: boolean;
  machine: string;
  date: string;
  loadAtEnd: number;
  providerVersion: string;
  fresh: FreshSettings;
  stampede: StampedeSettings;
  processes: ProcessSettings;
  totalS: number;
}

interface Verdict {
  target: string;
  figure: string;
  met: boolean | undefined;
}

const times = (x: number) => `${x.toFixed(2)}×`;
const perOpMs = (s: OpStats) => 1000 / s.opsPerSec;
const dialectName = (d: DialectName) => (d === 'sqlite' ? 'SQLite' : 'PostgreSQL');
const median = (values: readonly number[]) => percentile(sortedCopy(values), 50);
const max = (values: readonly number[]) => (values.length === 0 ? Number.NaN : Math.max(...values));

/** A stampede met its target: one refresh, no revoked grant, no error, one token that works. */
function clean(run: StampedeRun): boolean {
  return run.refreshes === TARGETS.refreshes && run.grantsRevoked === 0 && run.errors.length === 0 && run.distinctTokens === 1 && run.tokenActive;
}

// ---------------------------------------------------------------------------------------------
// Tables

const FRESH_HEADER = ['getAccessToken on a fresh token', 'ops/s', 'mean', 'p50', 'p99', 'ops timed', 'time vs floor', 'p50 vs floor'];

function freshRow(s: OpStats, floor: OpStats): string[] {
  return [
    s.name,
    formatCount(s.opsPerSec),
    formatMs(perOpMs(s)),
    formatMs(s.p50Ms),
    formatMs(s.p99Ms),
    formatCount(s.ops),
    times(perOpMs(s) / perOpMs(floor)),
    times(s.p50Ms / floor.p50Ms),
  ];
}

function freshRows(f: FreshResult): string[][] {
  return [f.floor, ...f.dialects.flatMap((d) => [d.cached, d.uncached])].map((s) => freshRow(s, f.floor));
}

const PARTS_HEADER = ['the uncached path, one call', 'mean', 'p50', 'p99', 'of getAccessToken (cacheMs 0)'];

function partRows(f: FreshResult): string[][] {
  return f.dialects.flatMap((d) =>
    [d.rowRead, d.rowReadDecrypt].map((s) => [s.name, formatMs(perOpMs(s)), formatMs(s.p50Ms), formatMs(s.p99Ms), `${((perOpMs(s) / perOpMs(d.uncached)) * 100).toFixed(0)}%`]),
  );
}

const refreshList = (runs: readonly StampedeRun[]) => runs.map((r) => String(r.refreshes)).join(', ');
const revokedTotal = (runs: readonly StampedeRun[]) => runs.reduce((n, r) => n + r.grantsRevoked, 0);
const errorTotal = (runs: readonly StampedeRun[]) => runs.reduce((n, r) => n + r.errors.length, 0);
const tokensList = (runs: readonly StampedeRun[]) => [...new Set(runs.map((r) => String(r.distinctTokens)))].join(', ');

const IN_PROCESS_HEADER = [
  'one process, expired token',
  'concurrent callers',
  'runs',
  'refreshes at the provider, per run',
  'grants revoked',
  'caller errors',
  'distinct tokens per run',
  'wall, median (max)',
  'callers p50',
  'callers p99',
  'refresh sent → answered, median',
  'same callers on the fresh token, median',
  'one caller alone, median',
];

const wallOf = (runs: readonly StampedeRun[]) => `${formatMs(median(runs.map((x) => x.wallMs)))} (${formatMs(max(runs.map((x) => x.wallMs)))})`;
const defined = (values: readonly (number | undefined)[]) => values.filter((v): v is number => v !== undefined);

function inProcessRows(results: readonly InProcessResult[]): string[][] {
  return results.map((r) => [
    dialectName(r.dialect),
    formatCount(r.callers),
    String(r.runs.length),
    refreshList(r.runs),
    String(revokedTotal(r.runs)),
    String(errorTotal(r.runs)),
    tokensList(r.runs),
    wallOf(r.runs),
    formatMs(r.callerP50Ms),
    formatMs(r.callerP99Ms),
    `${formatMs(median(defined(r.runs.map((x) => x.refreshSentMs))))} → ${formatMs(median(defined(r.runs.map((x) => x.refreshAnsweredMs))))}`,
    formatMs(median(r.freshWallMs)),
    formatMs(median(r.singleWallMs)),
  ]);
}

const PROCESSES_HEADER = [
  'processes on one PostgreSQL',
  'token',
  'callers',
  'runs',
  'refreshes at the provider, per run',
  'grants revoked',
  'caller errors',
  'distinct tokens per run',
  'wall, median (fastest – slowest)',
];

function processRows(p: ProcessesResult): string[][] {
  const row = (token: string, runs: readonly StampedeRun[]) => [
    `${p.processes} processes × ${formatCount(p.callersPerProcess)} concurrent callers`,
    token,
    formatCount(p.processes * p.callersPerProcess),
    String(runs.length),
    refreshList(runs),
    String(revokedTotal(runs)),
    String(errorTotal(runs)),
    tokensList(runs),
    `${formatMs(median(runs.map((x) => x.wallMs)))} (${formatMs(Math.min(...runs.map((x) => x.wallMs)))} – ${formatMs(max(runs.map((x) => x.wallMs)))})`,
  ];
  const rows = [row('expired', p.runs)];
  if (p.baselineRuns.length > 0) rows.push(row('fresh (nothing to refresh)', p.baselineRuns));
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Verdicts and notes

function freshVerdict(s: OpStats, floor: OpStats, what: string): Verdict {
  const ratio = perOpMs(s) / perOpMs(floor);
  const p50 = s.p50Ms / floor.p50Ms;
  return {
    target: `${what}: within ${TARGETS.freshVsFloor}× the floor (mean time per op and p50)`,
    figure: `${times(ratio)} mean, ${times(p50)} p50`,
    met: ratio <= TARGETS.freshVsFloor && p50 <= TARGETS.freshVsFloor,
  };
}

export function verdicts(res: Results, ctx: Pick<Context, 'fresh'>): Verdict[] {
  const out: Verdict[] = [];
  const floor = res.fresh.floor;
  for (const d of res.fresh.dialects) {
    out.push(freshVerdict(d.cached, floor, `getAccessToken, fresh token, cacheMs ${ctx.fresh.cacheMs} (cache hit), ${dialectName(d.dialect)} — the figure set against the target`));
  }
  for (const d of res.fresh.dialects) {
    out.push(freshVerdict(d.uncached, floor, `getAccessToken, fresh token, cacheMs 0 (no cache), ${dialectName(d.dialect)}`));
  }
  for (const r of res.inProcess) {
    out.push({
      target: `${formatCount(r.callers)} concurrent callers in one process, ${dialectName(r.dialect)}: exactly ${TARGETS.refreshes} refresh at the provider`,
      figure: `${refreshList([r.cold, ...r.runs])} (${r.runs.length + 1} runs, the untimed first one included)`,
      met: r.runs.length > 0 && [r.cold, ...r.runs].every(clean),
    });
  }
  const p = res.processes;
  const target = p
    ? `${p.processes} processes × ${formatCount(p.callersPerProcess)} callers on one PostgreSQL: exactly ${TARGETS.refreshes} refresh at the provider`
    : `several processes on one PostgreSQL: exactly ${TARGETS.refreshes} refresh at the provider`;
  if (!p) out.push({ target, figure: 'not measured', met: undefined });
  else out.push({ target, figure: `${refreshList(p.runs)} (${p.runs.length} run${p.runs.length === 1 ? '' : 's'})`, met: p.runs.length > 0 && p.runs.every(clean) });
  return out;
}

const VERDICT_HEADER = ['target', 'figure', 'result'];

function verdictRows(res: Results, ctx: Context): string[][] {
  return verdicts(res, ctx).map((v) => [v.target, v.figure, v.met === undefined ? 'not measured' : v.met ? 'met' : 'missed']);
}

function freshNotes(res: Results, ctx: Context): string[] {
  const f = res.fresh;
  const floorUs = perOpMs(f.floor) * 1000;
  const notes: string[] = [];
  notes.push(
    `Fresh token: the connection holds an access token minted by oidc-provider (${f.tokenLength} characters) that expires in an hour. The floor is one lookup in a Map of ${formatCount(f.floorEntries)} tenant + connector keys and one AES-256-GCM decryption (createDecipheriv, setAuthTag, update, final, UTF-8) of that same token with node:crypto, synchronous. Each getAccessToken call is awaited on its own and checked to answer the stored token; \`resolveClient\` is an async function answering a constant (a server's connector lookup would add to the uncached path). ${ctx.fresh.rounds} interleaved rounds of ${ctx.fresh.roundMs} ms per contender, the order reversed every other round, after a ${ctx.fresh.warmupMs} ms warm-up each; "time vs floor" is mean time per op over the floor's (${floorUs.toFixed(2)} µs).`,
  );
  const uncachedMissed = f.dialects.filter((d) => !freshVerdict(d.uncached, f.floor, '').met).map((d) => dialectName(d.dialect));
  const uncachedWorst = Math.max(...f.dialects.map((d) => perOpMs(d.uncached) / perOpMs(f.floor)));
  const uncachedVerdict =
    uncachedMissed.length === 0
      ? 'that path is reported against the same 5× and meets it too'
      : `that path is reported against the same 5× and misses it on ${uncachedMissed.join(' and ')} (up to ${times(uncachedWorst)} the floor)`;
  notes.push(
    `Which figure is set against the target: the target's floor is exactly what a hit of the token client's in-process cache does (\`cacheMs\` > 0: a Map lookup and one AES-256-GCM decryption of the token, sealed under a per-process key), so the cached path (\`cacheMs\` ${ctx.fresh.cacheMs}) is the figure set against it${f.durationMs < ctx.fresh.cacheMs ? ` (this part ran ${formatMs(f.durationMs)}, less than \`cacheMs\`, so every timed call of the cached client was a hit)` : ''}. With \`cacheMs\` 0 every call reads the connection's row and decrypts it through the encrypted object store; ${uncachedVerdict}. A Latchkey server sets \`cacheMs\` to LATCHKEY_CACHE_BOUND (5 s by default), so it serves the cached figure, and pays with that bound: a disconnect or reconnect made by another process is seen only after it.`,
  );
  const byDialect = (d: FreshDialect) => {
    const total = perOpMs(d.uncached) * 1000;
    const read = perOpMs(d.rowRead) * 1000;
    const readDecrypt = perOpMs(d.rowReadDecrypt) * 1000;
    const dbShare = read / total;
    const limit =
      dbShare >= 0.5
        ? `The database read, not the cryptography, limits it (${(dbShare * 100).toFixed(0)}% of the call)`
        : `Less than half of it is the database read (${(dbShare * 100).toFixed(0)}%); decryption, validation and the store's framing weigh as much`;
    return `${dialectName(d.dialect)}: getAccessToken with \`cacheMs\` 0 takes ${total.toFixed(1)} µs a call (${times(total / floorUs)} the floor) = the row read (the store's SELECT through Kysely) ${read.toFixed(1)} µs + decrypting both tokens (access and refresh, each under its canonical AAD), JSON parse and schema validation of the row ${(readDecrypt - read).toFixed(1)} µs + the token client's own work (argument checks, resolveClient, the expiry decision, the awaited async layers) ${(total - readDecrypt).toFixed(1)} µs. ${limit}. ${d.dialect === 'postgres' ? 'On PostgreSQL the read is one round trip to the server (on 127.0.0.1, over TCP) per call, and its p99 carries whatever else the machine runs.' : 'better-sqlite3 is synchronous, so on SQLite the read is statement execution and row mapping, not waiting on I/O.'}`;
  };
  for (const d of f.dialects) notes.push(byDialect(d));
  const cachedNotes = f.dialects.map((d) => `${dialectName(d.dialect)} ${(perOpMs(d.cached) * 1000).toFixed(2)} µs`).join(', ');
  notes.push(
    `The cache hit (${cachedNotes} a call, against the floor's ${floorUs.toFixed(2)} µs) adds to the floor the awaited async call, the nested Map lookup (tenant + connector, then user), the clock read and TTL and skew checks, and the answer object; the database is never read on a hit, so both databases give the same figure within noise.`,
  );
  return notes;
}

function stampedeNotes(res: Results, ctx: Context): string[] {
  const notes: string[] = [];
  notes.push(
    `Stampedes: each run mints a new grant at oidc-provider ${ctx.providerVersion} (in this process, on 127.0.0.1, refresh-token rotation on: a consumed refresh token presented again revokes the grant) and stores it as a connection whose access token expired a minute ago; the provider's counters are reset, then every caller calls getAccessToken at once. "Refreshes at the provider" counts the refresh_token requests its token endpoint received. A run meets the target when exactly one refresh arrived, no grant was revoked, no caller failed, every caller got the same token and introspection says that token is active. One untimed stampede comes first.`,
  );
  for (const r of res.inProcess) {
    const wall = median(r.runs.map((x) => x.wallMs));
    const single = median(r.singleWallMs);
    const freshWall = median(r.freshWallMs);
    const sent = median(defined(r.runs.map((x) => x.refreshSentMs)));
    const answered = median(defined(r.runs.map((x) => x.refreshAnsweredMs)));
    const queue =
      r.dialect === 'sqlite'
        ? "SQLite has one connection per process, so the refresh's locking transaction queues behind the callers' reads already waiting for it"
        : "the refresh's locking transaction queues for a connection of the pool behind the callers' reads";
    notes.push(
      `One process, ${dialectName(r.dialect)}: ${formatCount(r.callers)} callers of one token client (default \`cacheMs\` 0) all had their token ${formatMs(wall)} (median of ${r.runs.length}) after the first call; callers' p50 ${formatMs(r.callerP50Ms)}, p99 ${formatMs(r.callerP99Ms)}, max ${formatMs(r.callerMaxMs)}, each measured from its own call. One caller alone takes ${formatMs(single)} (median of ${r.singleWallMs.length}: a row read, the locked re-read, one refresh at the provider, the compare-and-set write and the commit). In a stampede the refresh request left ${formatMs(sent)} after the first call and was answered at ${formatMs(answered)} (medians, seen through the token client's \`fetch\` option): every caller first reads and decrypts the expired connection, and ${queue}. The same ${formatCount(r.callers)} callers right after, on the now fresh token (no refresh, no lock), take ${formatMs(freshWall)}, ${((freshWall / wall) * 100).toFixed(0)}% of the stampede's wall time: ${freshWall >= wall / 2 ? 'the reads, not the refresh, set most of it' : 'the refresh and the lock set more of it than the reads do'}. The untimed first stampede (new fixture and token client) took ${formatMs(r.cold.wallMs)}, with ${r.cold.refreshes} refresh.`,
    );
  }
  const p = res.processes;
  if (p) {
    const wall = median(p.runs.map((x) => x.wallMs));
    const base = p.baselineRuns.length > 0 ? median(p.baselineRuns.map((x) => x.wallMs)) : undefined;
    const lockCost = (q: ProcessesResult) => {
      const fastest = Math.min(...q.runs.map((x) => x.wallMs));
      const fastestBase = Math.min(...q.baselineRuns.map((x) => x.wallMs));
      const spread = `fastest runs ${formatMs(fastest)} expired, ${formatMs(fastestBase)} fresh`;
      return fastest > fastestBase
        ? `Between the fastest runs (the least disturbed by other work), the lock and the one refresh add ${formatMs(fastest - fastestBase)} (${spread})`
        : `The lock and the one refresh cost less than the run-to-run noise (${spread})`;
    };
    notes.push(
      `${p.processes} processes: the children of test/support/token-children.ts, the same ones test/oauth-processes.test.ts runs (each its own database pool, store and token client on one PostgreSQL schema, default \`cacheMs\` 0), started as that test starts them (\`node --import tsx\`, ${formatMs(median(p.startupMs))} until all were ready, not timed) and all ready before "go" is written to their stdin; ${formatCount(p.callersPerProcess)} concurrent callers each. Wall time runs from "go" to the last child's report, so it includes each child closing its pool; median ${formatMs(wall)} of ${p.runs.length} runs. One process takes the row lock (SELECT … FOR UPDATE) and refreshes; the others wait on the lock, re-read the committed tokens and hand them out without calling the provider.${
        base === undefined
          ? ''
          : ` The same children on a fresh token (nothing to refresh, no lock) take ${formatMs(base)} (median of ${p.baselineRuns.length}). ${lockCost(p)}; the rest is what fresh processes pay on their first calls (code not yet JIT-compiled; each pool opening up to 9 more connections, pg's default maximum being 10 and a child having one open after its ping) with ${p.processes} children, the parent and PostgreSQL sharing ${ctx.machine.match(/(\d+) cores/)?.[1] ?? 'the'} cores. The children report no timings of their own, so that rest is not broken down further and there is no callers' p99 for this case.`
      }`,
    );
  } else if (res.skipped) {
    notes.push(`Not measured: ${res.skipped}.`);
  }
  return notes;
}

function loadNote(ctx: Context): string {
  return `Load: the 1-minute load average was ${ctx.machine.match(/load average at start ([\d.]+)/)?.[1] ?? 'n/a'} at the start and ${ctx.loadAtEnd.toFixed(2)} at the end; the whole run took ${ctx.totalS.toFixed(0)} s. Other engineers' test runs may share these cores, which shows most in p99 and wall-time figures.`;
}

export function terminalReport(res: Results, ctx: Context): string {
  const parts = [
    `bench:tokens — ${ctx.quick ? 'QUICK (figures not recorded)' : 'full'} — ${ctx.date}`,
    ctx.machine,
    '',
    textTable(FRESH_HEADER, freshRows(res.fresh)),
    '',
    textTable(PARTS_HEADER, partRows(res.fresh)),
    '',
    textTable(IN_PROCESS_HEADER, inProcessRows(res.inProcess)),
  ];
  if (res.processes) parts.push('', textTable(PROCESSES_HEADER, processRows(res.processes)));
  parts.push('', textTable(VERDICT_HEADER, verdictRows(res, ctx)));
  return parts.join('\n');
}

export function markdownSection(res: Results, ctx: Context): string {
  const parts = [
    `Command: \`npm run bench:tokens\` (full mode). Date: ${ctx.date}.`,
    `Machine: ${ctx.machine}.`,
    '### Targets',
    markdownTable(VERDICT_HEADER, verdictRows(res, ctx)),
    '### `getAccessToken` on a fresh token',
    markdownTable(FRESH_HEADER, freshRows(res.fresh)),
    markdownTable(PARTS_HEADER, partRows(res.fresh)),
    '### Stampede: concurrent `getAccessToken` on an expired token',
    markdownTable(IN_PROCESS_HEADER, inProcessRows(res.inProcess)),
  ];
  if (res.processes) parts.push(markdownTable(PROCESSES_HEADER, processRows(res.processes)));
  parts.push('### Notes', [...freshNotes(res, ctx), ...stampedeNotes(res, ctx), loadNote(ctx)].map((n) => `- ${n}`).join('\n'));
  return parts.join('\n\n');
}
