// Child processes for refresh-across-processes checks (test/oauth-processes.test.ts and
// bench/tokens-stampede.ts): each child builds its own database handle, store and token client on
// one database, says "ready", waits for "go" on stdin, runs its callers at once and prints one JSON
// report. test/support/token-child.ts is the child's entry point.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { LatchkeyError } from '../../src/core/index.js';
import { DataKeys, Keyring } from '../../src/crypto/index.js';
import { openDatabase } from '../../src/db/index.js';
import { EncryptedObjectStore, ObjectTypeRegistry } from '../../src/objects/index.js';
import { CONNECTION_TYPE, createTokenClient, type ResolvedClient } from '../../src/oauth/index.js';
import { createOutbound } from '../../src/outbound/index.js';
import type { TestProvider } from './oidc-provider.js';

export interface ChildConfig {
  url: string | undefined;
  dataDir: string;
  masterKey: string;
  tenantId: string;
  connectorId: string;
  resolved: ResolvedClient;
  callers: number;
}

/** Distinct tokens the child's callers got, and the error codes of those that failed. */
export interface ChildReport {
  tokens: string[];
  errors: string[];
}

export interface Child {
  /** Resolves once the child is ready (or settles when it died before that). */
  ready: Promise<void>;
  go(): void;
  report: Promise<ChildReport>;
  kill(): void;
}

const CHILD_ENTRY = fileURLToPath(new URL('./token-child.ts', import.meta.url));

/** A shared connector's client on the test provider (client_secret_basic; plain http, so the token client needs the loopback opt-in). */
export function resolvedClientFor(op: TestProvider, connectorId: string, scopes: string[] = []): ResolvedClient {
  const client = op.clients.basic;
  return {
    connectorId,
    tokenMode: 'shared',
    authType: 'oauth_authorization_code',
    tokenUrl: op.tokenUrl,
    revocationUrl: op.revocationUrl,
    issuer: op.issuer,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    clientAuthentication: client.authMethod,
    scopes,
    scopeSeparator: ' ',
    tokenParams: {},
  };
}

/** One process: its own handle, store and token client; ready, then on "go" 250 concurrent calls. */
export async function runChild(config: ChildConfig): Promise<void> {
  const handle = openDatabase({ url: config.url, dataDir: config.dataDir });
  const keyring = new Keyring(Buffer.from(config.masterKey, 'base64'));
  const registry = new ObjectTypeRegistry();
  registry.register(CONNECTION_TYPE);
  const store = new EncryptedObjectStore({ db: handle.db, handle, registry, dataKeys: new DataKeys({ db: handle.db, keyring }) });
  // The test provider listens on 127.0.0.1 over plain http.
  const tokens = createTokenClient({ store, outbound: createOutbound({ allowInsecureLoopback: true, egressAllow: ['127.0.0.1/32'] }), resolveClient: async () => config.resolved });
  await handle.ping();
  const lines = createInterface({ input: process.stdin });
  const go = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  process.stdout.write('ready\n');
  await go;
  lines.close();
  const settled = await Promise.allSettled(Array.from({ length: config.callers }, () => tokens.getAccessToken(config.tenantId, config.connectorId)));
  const report: ChildReport = { tokens: [], errors: [] };
  for (const result of settled) {
    if (result.status === 'fulfilled') report.tokens.push(result.value.accessToken);
    else report.errors.push(result.reason instanceof LatchkeyError ? result.reason.code : String(result.reason));
  }
  report.tokens = [...new Set(report.tokens)];
  await handle.close();
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** Starts one child: `node --import tsx`, "ready" on stdout, "go" on stdin, then one JSON line. */
export function startChild(config: ChildConfig, timeoutMs = 60_000): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD_ENTRY], {
    env: { ...process.env, LATCHKEY_OAUTH_CHILD: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const timer = setTimeout(() => child.kill(), timeoutMs);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout });
  let onReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  const report = new Promise<ChildReport>((resolve, reject) => {
    lines.on('line', (line) => {
      if (line === 'ready') onReady();
      else if (line.startsWith('{')) resolve(JSON.parse(line) as ChildReport);
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`a child process exited with ${code}: ${stderr.slice(-2000)}`));
    });
  });
  report.catch(() => {});
  return {
    // A child that dies before "ready" fails the caller instead of hanging it.
    ready: Promise.race([ready, report.then(() => undefined)]),
    go: () => child.stdin.end('go\n'),
    report,
    kill: () => {
      if (child.exitCode === null) child.kill();
    },
  };
}
