// `npm run bench:apikeys [-- --quick]`: API key verification. In process, a cached key next to its
// floor (one HMAC-SHA-256 + one Map lookup) and next to better-auth's api-key plugin; over HTTP,
// GET /api/v1/me on `latchkey serve` next to a bare Fastify route; uncached verification with
// 1,000 and 1,000,000 keys on SQLite and PostgreSQL; revocation seen by a second server on one
// PostgreSQL. Full mode writes its section of BENCHMARKS.md; --quick is a smoke run with small
// counts that writes nothing.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { sql } from 'kysely';
import { createTestDatabase, postgresSkipReason, POSTGRES_URL } from '../test/support/databases.js';
import { ROOT } from '../test/support/cli.js';
import { benchHttp, MissingRoute, type HttpResult, type HttpSettings } from './apikeys-http.js';
import { newEncryptionKey, openLatchkey } from './apikeys-latchkey.js';
import { createPeer, type Peer } from './apikeys-peer.js';
import { isSkipped, markdownSection, terminalReport, verdicts, type Context, type Results, type Skipped } from './apikeys-report.js';
import { benchRevocation, type RevocationResult, type RevocationSettings } from './apikeys-revocation.js';
import { benchUncached, type UncachedResult, type UncachedSettings } from './apikeys-uncached.js';
import { benchVerify, type VerifySettings } from './apikeys-verify.js';
import { describeMachine, machineLine, parseMode, writeBenchmarkSection, type BenchMode } from './support.js';

const HEADING = '## API keys (`npm run bench:apikeys`)';

interface Settings {
  verify: VerifySettings;
  http: HttpSettings;
  uncached: UncachedSettings & { rounds: number; sizes: readonly number[] };
  revocation: RevocationSettings;
}

const FULL: Settings = {
  verify: { rounds: 10, roundMs: 200, warmupMs: 500 },
  http: { connections: 50, durationS: 10, warmupS: 3, runs: 2 },
  uncached: { sizes: [1_000, 1_000_000], measured: 10_000, warmup: 200, rounds: 20 },
  revocation: { revocations: 100, warmup: 5, timeoutMs: 10_000 },
};

const QUICK: Settings = {
  verify: { rounds: 4, roundMs: 100, warmupMs: 200 },
  http: { connections: 50, durationS: 2, warmupS: 1, runs: 1 },
  uncached: { sizes: [1_000, 100_000], measured: 2_000, warmup: 100, rounds: 10 },
  revocation: { revocations: 20, warmup: 2, timeoutMs: 10_000 },
};

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(`${ROOT}node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function databaseVersions(pgSkipped: string | undefined): Promise<{ sqlite: string; postgres: string }> {
  const tdb = await createTestDatabase('sqlite');
  let sqlite = 'unknown';
  try {
    const row = await sql<{ v: string }>`select sqlite_version() as v`.execute(tdb.open().db);
    sqlite = row.rows[0]?.v ?? 'unknown';
  } finally {
    await tdb.dispose();
  }
  if (pgSkipped) return { sqlite, postgres: 'not reachable' };
  const pg = await createTestDatabase('postgres');
  try {
    const row = await sql<{ server_version: string }>`show server_version`.execute(pg.open().db);
    return { sqlite, postgres: row.rows[0]?.server_version ?? 'unknown' };
  } finally {
    await pg.dispose();
  }
}

/** Parts 1 and 5: a cached key in process, the floor and better-auth, on SQLite. */
async function runVerify(settings: VerifySettings) {
  const tdb = await createTestDatabase('sqlite');
  const peers: Peer[] = [];
  const bench = await openLatchkey(tdb, newEncryptionKey());
  try {
    peers.push(await createPeer({ dataDir: tdb.dataDir }));
    peers.push(await createPeer({ dataDir: undefined }));
    log(`verify: ${settings.rounds} rounds of ${settings.roundMs} ms per contender`);
    return await benchVerify(bench, peers, settings);
  } finally {
    for (const p of peers) p.close();
    await bench.close();
    await tdb.dispose();
  }
}

async function runHttp(settings: HttpSettings): Promise<HttpResult | Skipped> {
  try {
    return await benchHttp(settings, log);
  } catch (err) {
    if (err instanceof MissingRoute) return { skipped: err.message };
    throw err;
  }
}

async function runRevocation(settings: RevocationSettings, pgSkipped: string | undefined): Promise<RevocationResult | Skipped> {
  if (pgSkipped) return { skipped: pgSkipped };
  try {
    return await benchRevocation(settings, log);
  } catch (err) {
    if (err instanceof MissingRoute) return { skipped: err.message };
    throw err;
  }
}

async function main(mode: BenchMode): Promise<void> {
  const settings = mode.quick ? QUICK : FULL;
  log(`bench:apikeys — mode: ${mode.label}`);
  const host = describeMachine();
  const pgSkipped = await postgresSkipReason();
  if (pgSkipped && !mode.quick) throw new Error(`${pgSkipped}; full mode needs PostgreSQL (set LATCHKEY_TEST_DATABASE_URL).`);
  const db = await databaseVersions(pgSkipped);
  const machine = machineLine(host, { SQLite: db.sqlite, PostgreSQL: db.postgres });

  const verify = await runVerify(settings.verify);
  const http = await runHttp(settings.http);
  const uncached: UncachedResult[] = await benchUncached('sqlite', settings.uncached.sizes, settings.uncached, log);
  if (!pgSkipped) uncached.push(...(await benchUncached('postgres', settings.uncached.sizes, settings.uncached, log)));
  const revocation = await runRevocation(settings.revocation, pgSkipped);

  const results: Results = { verify, http, uncached, uncachedSkipped: pgSkipped, revocation };
  const ctx: Context = {
    quick: mode.quick,
    machine,
    date: new Date().toISOString().slice(0, 10),
    loadAtEnd: loadavg()[0] ?? 0,
    verify: settings.verify,
    http: settings.http,
    uncached: settings.uncached,
    revocation: settings.revocation,
    versions: {
      'better-auth': packageVersion('better-auth'),
      '@better-auth/api-key': packageVersion('@better-auth/api-key'),
      autocannon: packageVersion('autocannon'),
      fastify: packageVersion('fastify'),
      'better-sqlite3': packageVersion('better-sqlite3'),
    },
  };
  process.stdout.write(`${terminalReport(results, ctx)}\n`);
  const missing = verdicts(results).filter((v) => v.met === undefined);
  if (mode.quick) {
    log('Quick mode: BENCHMARKS.md left unchanged; run without --quick to record figures.');
    return;
  }
  writeBenchmarkSection(HEADING, markdownSection(results, ctx));
  log(`Wrote the "${HEADING.slice(3)}" section of BENCHMARKS.md (PostgreSQL at ${new URL(POSTGRES_URL).host}).`);
  if (missing.length > 0) log(`Not measured: ${missing.map((v) => v.target).join('; ')}.`);
  if (isSkipped(http) || isSkipped(revocation)) process.exitCode = 1;
}

await main(parseMode(process.argv.slice(2)));
