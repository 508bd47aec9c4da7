// Stampedes for `npm run bench:tokens`: many concurrent `getAccessToken` calls on an expired token,
// in one process (SQLite and PostgreSQL) and from several processes on one PostgreSQL, counted at
// the authorization server (oidc-provider with refresh-token rotation: a second refresh with a
// consumed refresh token would revoke the grant). The processes are the children of
// test/support/token-children.ts, the same children test/oauth-processes.test.ts runs.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { LatchkeyError } from '../src/core/index.js';
import type { DialectName } from '../src/db/index.js';
import { createOutbound } from '../src/outbound/index.js';
import { CONNECTION_TYPE, createConnectionStore, createTokenClient, type ResolvedClient, type TokenClient } from '../src/oauth/index.js';
import type { TestProvider } from '../test/support/oidc-provider.js';
import { createStoreFixture, type StoreFixture } from '../test/support/store.js';
import { percentile, sortedCopy } from './support.js';
import { resolvedClientFor } from './tokens-fresh.js';
import { startChild, type ChildConfig } from '../test/support/token-children.js';

/** The child side of the 4-process test: this file run with LATCHKEY_OAUTH_CHILD set. */

export interface StampedeSettings {
  callers: number;
  runs: number;
  /** Runs of a single caller on an expired token: the time of one refresh with nobody else asking. */
  singleRuns: number;
}

export interface ProcessSettings {
  processes: number;
  callersPerProcess: number;
  runs: number;
  /** Runs of the same children on a fresh token (nothing to refresh): what cold processes cost without the lock and refresh. */
  baselineRuns: number;
}

/** Outcome of one stampede, as the authorization server and the callers saw it. */
export interface StampedeRun {
  /** Refresh requests that reached the token endpoint (must be 1). */
  refreshes: number;
  /** Every POST to the token endpoint. */
  tokenRequests: number;
  /** Grants the provider revoked (a refresh token presented twice): must be 0. */
  grantsRevoked: number;
  /** Distinct access tokens handed out (must be 1). */
  distinctTokens: number;
  errors: string[];
  /** The handed-out token works at the provider (introspection). */
  tokenActive: boolean;
  wallMs: number;
  /** In one process: when the token client sent the refresh and got its answer, ms after the first call. */
  refreshSentMs?: number | undefined;
  refreshAnsweredMs?: number | undefined;
}

export interface InProcessResult {
  dialect: DialectName;
  callers: number;
  runs: StampedeRun[];
  /** Every caller's time from its call to its token, all runs pooled. */
  callerP50Ms: number;
  callerP99Ms: number;
  callerMaxMs: number;
  /** The untimed first stampede (a fresh database fixture and token client, the provider's first refreshes). */
  cold: StampedeRun;
  /** The same number of callers right after each timed run, on the now fresh token (no refresh): wall time. */
  freshWallMs: number[];
  /** One caller, an expired token: wall time of each run. */
  singleWallMs: number[];
}

export interface ProcessesResult {
  processes: number;
  callersPerProcess: number;
  runs: StampedeRun[];
  /** The same on a fresh token: no refresh expected. */
  baselineRuns: StampedeRun[];
  /** From spawn to every child's "ready", per run (not part of the wall time). */
  startupMs: number[];
}

const random = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;

function describeError(err: unknown): string {
  return err instanceof LatchkeyError ? err.code : String(err);
}

/** A new grant at the provider, stored as a connection whose access token expired a minute ago (or, `fresh`, expires in an hour). */
async function connectExpired(op: TestProvider, f: StoreFixture, tenantId: string, connectorId: string, fresh = false): Promise<void> {
  const minted = await op.mintGrant({ accountId: random('acct'), scope: 'offline_access api:read' });
  await createConnectionStore({ store: f.store }).save(tenantId, connectorId, null, {
    accessToken: minted.accessToken,
    refreshToken: minted.refreshToken,
    tokenType: 'bearer',
    scopes: ['offline_access', 'api:read'],
    expiresAt: new Date(Date.now() + (fresh ? 60 * 60_000 : -60_000)).toISOString(),
  });
}

async function finishRun(op: TestProvider, tokens: Set<string>, errors: string[], wallMs: number): Promise<StampedeRun> {
  const [token] = tokens;
  // Counters first: introspection is not a token request, but read them before anything else runs.
  const counted = { refreshes: op.counters.refresh, tokenRequests: op.counters.token, grantsRevoked: op.counters.grantsRevoked };
  const tokenActive = token !== undefined && tokens.size === 1 ? await op.introspect(token) : false;
  return { ...counted, distinctTokens: tokens.size, errors, tokenActive, wallMs };
}

/**
 * `callers` concurrent calls of one token client on one expired connection, `runs` times (a new
 * grant and connection each run), then `singleRuns` times a single caller.
 */
export async function benchInProcess(op: TestProvider, dialect: DialectName, settings: StampedeSettings, log: (m: string) => void): Promise<InProcessResult> {
  const f = await createStoreFixture(dialect, [CONNECTION_TYPE]);
  try {
    const tenantId = random('t');
    // The token endpoint call, seen from the token client's side (its `fetch` option): when the
    // refresh was sent and answered, in ms after the stampede started.
    let startedAt = 0;
    let sent: number | undefined;
    let answered: number | undefined;
    const timedFetch: typeof fetch = async (input, init) => {
      sent = performance.now() - startedAt;
      try {
        return await fetch(input, init);
      } finally {
        answered = performance.now() - startedAt;
      }
    };
    const stampede = async (tokens: TokenClient, connectorId: string, callers: number, latencies: number[] | undefined): Promise<StampedeRun> => {
      op.resetCounters();
      sent = undefined;
      answered = undefined;
      const handedOut = new Set<string>();
      const errors: string[] = [];
      startedAt = performance.now();
      const calls = Array.from({ length: callers }, () => {
        const t0 = performance.now();
        return tokens.getAccessToken(tenantId, connectorId).then(
          (token) => {
            latencies?.push(performance.now() - t0);
            handedOut.add(token.accessToken);
          },
          (err: unknown) => {
            errors.push(describeError(err));
          },
        );
      });
      await Promise.all(calls);
      const run = await finishRun(op, handedOut, errors, performance.now() - startedAt);
      return { ...run, refreshSentMs: sent, refreshAnsweredMs: answered };
    };
    /** A new grant, an expired connection and a new token client (default `cacheMs` 0), then `callers` at once. */
    const once = async (callers: number, latencies: number[] | undefined) => {
      const connectorId = random('conn');
      const resolved: ResolvedClient = resolvedClientFor(op, connectorId);
      await connectExpired(op, f, tenantId, connectorId);
      const tokens = createTokenClient({ store: f.store, outbound: createOutbound({ fetch: timedFetch, allowInsecureLoopback: true }), resolveClient: async () => resolved });
      return { run: await stampede(tokens, connectorId, callers, latencies), tokens, connectorId };
    };

    // One untimed stampede first: connection pools, prepared paths and the provider's JIT are warm.
    const { run: cold } = await once(settings.callers, undefined);
    log(`stampede, one process, ${dialect}: untimed first run: ${cold.refreshes} refresh(es), ${cold.wallMs.toFixed(1)} ms`);
    const runs: StampedeRun[] = [];
    const freshRuns: StampedeRun[] = [];
    const latencies: number[] = [];
    for (let i = 0; i < settings.runs; i++) {
      const { run, tokens, connectorId } = await once(settings.callers, latencies);
      log(`stampede, one process, ${dialect}: run ${i + 1}/${settings.runs}: ${run.refreshes} refresh(es), ${run.wallMs.toFixed(1)} ms`);
      runs.push(run);
      // The same callers again, now that the token is fresh: what the reads alone cost.
      const again = await stampede(tokens, connectorId, settings.callers, undefined);
      if (again.refreshes !== 0 || again.errors.length > 0 || again.distinctTokens !== 1) throw new Error(`${dialect}: callers on a fresh token refreshed or failed`);
      freshRuns.push(again);
    }
    const singleWallMs: number[] = [];
    for (let i = 0; i < settings.singleRuns; i++) {
      const { run } = await once(1, undefined);
      if (run.refreshes !== 1 || run.errors.length > 0) throw new Error(`${dialect}: a single caller on an expired token did not refresh once`);
      singleWallMs.push(run.wallMs);
    }
    const sorted = sortedCopy(latencies);
    return {
      dialect,
      callers: settings.callers,
      runs,
      callerP50Ms: percentile(sorted, 50),
      callerP99Ms: percentile(sorted, 99),
      callerMaxMs: sorted[sorted.length - 1] ?? Number.NaN,
      cold,
      freshWallMs: freshRuns.map((r) => r.wallMs),
      singleWallMs,
    };
  } finally {
    await f.dispose();
  }
}

// ---------------------------------------------------------------------------------------------
// Several processes

/**
 * `processes` children, each with its own handle, store and token client on one PostgreSQL schema,
 * all ready before "go"; each runs `callersPerProcess` concurrent calls. Wall time: from "go" to
 * the last child's report (each child closes its database pool before reporting).
 */
export async function benchProcesses(op: TestProvider, settings: ProcessSettings, log: (m: string) => void): Promise<ProcessesResult> {
  const f = await createStoreFixture('postgres', [CONNECTION_TYPE]);
  try {
    const tenantId = random('t');
    const startupMs: number[] = [];
    const once = async (fresh: boolean): Promise<StampedeRun> => {
      const connectorId = random('conn');
      await connectExpired(op, f, tenantId, connectorId, fresh);
      const config: ChildConfig = {
        url: f.tdb.url,
        dataDir: f.tdb.dataDir,
        masterKey: f.keyring.primary.key.toString('base64'),
        tenantId,
        connectorId,
        resolved: resolvedClientFor(op, connectorId),
        callers: settings.callersPerProcess,
      };
      const spawned = performance.now();
      const children = Array.from({ length: settings.processes }, () => startChild(config, 120_000));
      try {
        await Promise.all(children.map((c) => c.ready));
        startupMs.push(performance.now() - spawned);
        op.resetCounters();
        const started = performance.now();
        for (const c of children) c.go();
        const reports = await Promise.all(children.map((c) => c.report));
        const wallMs = performance.now() - started;
        return await finishRun(op, new Set(reports.flatMap((r) => r.tokens)), reports.flatMap((r) => r.errors), wallMs);
      } finally {
        for (const c of children) c.kill();
      }
    };
    const runs: StampedeRun[] = [];
    const baselineRuns: StampedeRun[] = [];
    for (let i = 0; i < Math.max(settings.runs, settings.baselineRuns); i++) {
      if (i < settings.runs) {
        const run = await once(false);
        log(`stampede, ${settings.processes} processes, postgres: run ${i + 1}/${settings.runs}: ${run.refreshes} refresh(es), ${run.wallMs.toFixed(1)} ms`);
        runs.push(run);
      }
      if (i < settings.baselineRuns) {
        const run = await once(true);
        log(`${settings.processes} processes on a fresh token, postgres: run ${i + 1}/${settings.baselineRuns}: ${run.refreshes} refresh(es), ${run.wallMs.toFixed(1)} ms`);
        if (run.refreshes !== 0 || run.errors.length > 0 || run.distinctTokens !== 1) throw new Error('processes on a fresh token refreshed or failed');
        baselineRuns.push(run);
      }
    }
    return { processes: settings.processes, callersPerProcess: settings.callersPerProcess, runs, baselineRuns, startupMs };
  } finally {
    await f.dispose();
  }
}
