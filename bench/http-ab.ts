// `npx tsx bench/http-ab.ts <tree A> <tree B> [path]`: which of two Latchkey trees (two checkouts,
// e.g. `git worktree add /tmp/base HEAD~1`, with node_modules linked) spends less server CPU per
// request on one route. Both `latchkey serve` run at once on their own SQLite databases; autocannon
// (in its own process, 50 connections) puts each under load in turn in short bursts, alternating
// A B, B A, ... so that a machine whose speed drifts (a shared VM) drifts for both. Prints each
// tree's median CPU per request (from /proc) and the median of the per-round A/B ratios.
// Settings from the environment: ROUNDS (default 10), BURST_S (2), RATE (requests/s, default as
// fast as it goes), A_ENV / B_ENV (extra NAME=value,NAME=value for one side only).
// A measuring tool for changes to the HTTP stack; it records nothing.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../test/support/cli.js';
import { processCpuSeconds } from './http-load.js';

const [treeA, treeB, path = '/healthz'] = process.argv.slice(2);
if (treeA === undefined || treeB === undefined) {
  process.stderr.write('usage: npx tsx bench/http-ab.ts <tree A> <tree B> [path, default /healthz]\n');
  process.exit(2);
}
const rounds = Number(process.env['ROUNDS'] ?? 10);
const burstS = Number(process.env['BURST_S'] ?? 2);
const rate = Number(process.env['RATE'] ?? 0);
const encryptionKey = randomBytes(32).toString('base64');
const AUTOCANNON = resolve(import.meta.dirname, '../node_modules/.bin/autocannon');

interface Side {
  name: string;
  child: ChildProcess;
  dir: string;
  url: string;
  auth: string[];
  samples: number[];
}

async function serve(name: string, tree: string): Promise<Side> {
  const dir = mkdtempSync(join(tmpdir(), `latchkey-ab-${name}-`));
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('LATCHKEY_')) env[k] = v;
  Object.assign(env, { LATCHKEY_DATA_DIR: dir, LATCHKEY_ENCRYPTION_KEY: encryptionKey });
  for (const pair of (process.env[`${name}_ENV`] ?? '').split(',').filter(Boolean)) {
    const at = pair.indexOf('=');
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const cli = join(resolve(tree), 'src/cli/main.ts');
  const port = await freePort();
  const log = openSync(join(dir, 'serve.log'), 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'serve', '--host', '127.0.0.1', '--port', String(port)], { cwd: tree, env, stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`${name}: latchkey serve exited; see ${join(dir, 'serve.log')}`);
    const up = await fetch(`${base}/healthz`).then((r) => r.ok, () => false);
    if (up) break;
    if (i > 300) throw new Error(`${name}: latchkey serve did not answer within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  let auth: string[] = [];
  if (path !== '/healthz') {
    const made = spawnSync(process.execPath, ['--import', 'tsx', cli, 'admin', 'create-key', '--tenant', 'default', '--user', 'admin', '--name', 'ab'], { cwd: tree, env, encoding: 'utf8' });
    const key = /lk_[A-Za-z0-9_]+/.exec(`${made.stdout}${made.stderr}`)?.[0];
    if (key === undefined) throw new Error(`${name}: admin create-key printed no key`);
    auth = ['-H', `authorization=ApiKey ${key}`];
  }
  return { name, child, dir, url: `${base}${path}`, auth, samples: [] };
}

/** CPU microseconds the server spent per answered request in one burst. */
function burst(side: Side, seconds: number): number {
  const before = processCpuSeconds(side.child.pid);
  const run = spawnSync(AUTOCANNON, ['-c', '50', '-d', String(seconds), ...(rate > 0 ? ['-R', String(rate)] : []), '-j', ...side.auth, side.url], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const after = processCpuSeconds(side.child.pid);
  const result = JSON.parse(run.stdout) as { requests: { total: number }; non2xx: number; errors: number };
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${side.name}: ${result.non2xx} answers not 2xx, ${result.errors} errors`);
  if (before === undefined || after === undefined) throw new Error('No CPU time in /proc for the server (Linux only).');
  return ((after - before) * 1e6) / result.requests.total;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const sides = [await serve('A', treeA), await serve('B', treeB)];
try {
  for (const side of sides) burst(side, 2); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) side.samples.push(burst(side, burstS));
    process.stderr.write(`round ${round + 1} of ${rounds}\n`);
  }
  for (const side of sides) {
    process.stdout.write(`${side.name} ${path}: median ${median(side.samples).toFixed(1)} µs of server CPU a request [${side.samples.map((x) => x.toFixed(0)).join(' ')}]\n`);
  }
  const [a, b] = sides as [Side, Side];
  const ratios = a.samples.map((x, i) => x / (b.samples[i] ?? Number.NaN));
  process.stdout.write(`A/B: median ${median(ratios).toFixed(3)} [${ratios.map((x) => x.toFixed(2)).join(' ')}]\n`);
} finally {
  for (const side of sides) {
    if (side.child.exitCode === null) {
      const exited = new Promise((r) => side.child.once('exit', r));
      side.child.kill('SIGTERM');
      await exited;
    }
    rmSync(side.dir, { recursive: true, force: true });
  }
}
