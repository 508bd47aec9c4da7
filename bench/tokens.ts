// `npm run bench:tokens [-- --quick]`: the OAuth token client. `getAccessToken` on a fresh token
// (default, and with the in-process cache) on SQLite and PostgreSQL next to its floor (a Map lookup +
// an AES-256-GCM decryption of the token, measured in the same run); 1,000 concurrent calls on an
// expired token in one process, and from 4 processes on one PostgreSQL, counted at a real
// authorization server (oidc-provider with refresh-token rotation). Full mode writes its section of
// BENCHMARKS.md; --quick is a smoke run with small counts that writes nothing.
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import type { DialectName } from '../src/db/index.js';
import { createTestDatabase, postgresSkipReason, POSTGRES_URL } from '../test/support/databases.js';
import { startOidcProvider } from '../test/support/oidc-provider.js';
import { describeMachine, machineLine, parseMode, writeBenchmarkSection, type BenchMode } from './support.js';
import { benchFresh, type FreshSettings } from './tokens-fresh.js';
import { markdownSection, terminalReport, verdicts, type Context, type Results } from './tokens-report.js';
import { benchInProcess, benchProcesses, type InProcessResult, type ProcessSettings, type StampedeSettings } from './tokens-stampede.js';

const HEADING = '## Tokens (`npm run bench:tokens`)';

interface Settings {
  fresh: FreshSettings;
  stampede: StampedeSettings;
  processes: ProcessSettings;
}

const FULL: Settings = {
  fresh: { rounds: 10, roundMs: 200, warmupMs: 500, cacheMs: 60_000 },
  stampede: { callers: 1000, runs: 5, singleRuns: 5 },
  processes: { processes: 4, callersPerProcess: 250, runs: 5, baselineRuns: 5 },
};

const QUICK: Settings = {
  fresh: { rounds: 3, roundMs: 100, warmupMs: 200, cacheMs: 60_000 },
  stampede: { callers: 1000, runs: 1, singleRuns: 1 },
  processes: { processes: 4, callersPerProcess: 250, runs: 1, baselineRuns: 1 },
};

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

function packageVersion(name: string): string {
  try {
    const file = new URL(`../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function databaseVersions(pgSkipped: string | undefined): Promise<{ sqlite: string; postgres: string }> {
  const lite = await createTestDatabase('sqlite');
  let sqlite = 'unknown';
  try {
    const row = await sql<{ v: string }>`select sqlite_version() as v`.execute(lite.open().db);
    sqlite = row.rows[0]?.v ?? 'unknown';
  } finally {
    await lite.dispose();
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

async function main(mode: BenchMode): Promise<void> {
  const settings = mode.quick ? QUICK : FULL;
  const started = performance.now();
  log(`bench:tokens — mode: ${mode.label}`);
  const host = describeMachine();
  const pgSkipped = await postgresSkipReason();
  if (pgSkipped && !mode.quick) throw new Error(`${pgSkipped}; full mode needs PostgreSQL (set LATCHKEY_TEST_DATABASE_URL).`);
  const db = await databaseVersions(pgSkipped);
  const machine = machineLine(host, { SQLite: db.sqlite, PostgreSQL: db.postgres });
  const dialects: DialectName[] = pgSkipped ? ['sqlite'] : ['sqlite', 'postgres'];

  const op = await startOidcProvider();
  let results: Results;
  try {
    const fresh = await benchFresh(op, dialects, settings.fresh, log);
    const inProcess: InProcessResult[] = [];
    for (const dialect of dialects) inProcess.push(await benchInProcess(op, dialect, settings.stampede, log));
    const processes = pgSkipped ? undefined : await benchProcesses(op, settings.processes, log);
    results = { fresh, inProcess, processes, skipped: pgSkipped };
  } finally {
    await op.stop();
  }

  const ctx: Context = {
    quick: mode.quick,
    machine,
    date: new Date().toISOString().slice(0, 10),
    loadAtEnd: loadavg()[0] ?? 0,
    providerVersion: packageVersion('oidc-provider'),
    fresh: settings.fresh,
    stampede: settings.stampede,
    processes: settings.processes,
    totalS: (performance.now() - started) / 1000,
  };
  process.stdout.write(`${terminalReport(results, ctx)}\n`);
  const stampedeMissed = verdicts(results, ctx).some((v) => v.met === false && /refresh at the provider/.test(v.target));
  if (stampedeMissed) process.exitCode = 1;
  if (mode.quick) {
    log('Quick mode: BENCHMARKS.md left unchanged; run without --quick to record figures.');
    return;
  }
  writeBenchmarkSection(HEADING, markdownSection(results, ctx));
  log(`Wrote the "${HEADING.slice(3)}" section of BENCHMARKS.md (PostgreSQL at ${new URL(POSTGRES_URL).host}).`);
}

await main(parseMode(process.argv.slice(2)));
