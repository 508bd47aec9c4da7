// Server processes for the HTTP part of `npm run bench:apikeys`: `bin/latchkey serve` (compiled) and
// the bare Fastify baseline, each a child process of the same Node, with its output going to a
// file. (test/support/cli.ts's startServer keeps a child's output in this process's memory, read
// through a pipe: under load testing that reading would take CPU from autocannon on the same cores.)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliEnv, freePort, ROOT } from '../test/support/cli.js';

/** tsx's loader by absolute URL, as test/support/cli.ts runs the CLI from source. */
const TSX = import.meta.resolve('tsx');

/** `BENCH_CPU_PROF=<dir>`: each `latchkey serve` writes a V8 CPU profile there when it stops (open it in Chrome's DevTools). */
export function profileArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF;
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

export interface BenchServer {
  name: string;
  /** Base URL, no trailing slash. */
  url: string;
  child: ChildProcess;
  logFile: string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** True once `url` answers 200. */
async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url);
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** A child process of this Node running `args`, output to `logFile`, ready once `readyPath` answers 200. */
export async function spawnLogged(name: string, args: string[], env: Record<string, string>, logFile: string, port: number, readyPath: string): Promise<BenchServer> {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, args, { cwd: ROOT, env: cliEnv(env), stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let exitCode: number | null | undefined;
  void exited.then(([code]) => {
    exitCode = code;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (await answers(`${url}${readyPath}`)) break;
    if (exitCode !== undefined) throw new Error(`${name} exited with ${exitCode} before listening; see ${logFile}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not start within 30 s; see ${logFile}`);
    }
    await sleep(50);
  }
  return {
    name,
    url,
    child,
    logFile,
    async stop() {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      const [code] = await exited;
      return code;
    },
  };
}

let built = false;

/**
 * Compiles the server (`tsc -p tsconfig.build.json`, what `npm install` and `npm run build` do) once
 * per benchmark run, so the server measured is the one `npm start` runs, built from this tree's
 * source: run through tsx instead, every nested function is wrapped to keep its name, which costs
 * a proxied call about 6% more CPU.
 */
function ensureBuilt(): void {
  if (built) return;
  process.stderr.write('bench: compiling the server (tsc -p tsconfig.build.json)\n');
  const tsc = spawnSync(process.execPath, [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', `${ROOT}tsconfig.build.json`], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json exited with ${tsc.status ?? tsc.signal}`);
  built = true;
}

/** `bin/latchkey serve` (compiled), on 127.0.0.1 and a free port, with `env` (LATCHKEY_*) settings. */
export async function startLatchkeyServer(name: string, env: Record<string, string>, logFile: string): Promise<BenchServer> {
  ensureBuilt();
  const port = await freePort();
  const args = [...profileArgs(), `${ROOT}bin/latchkey`, 'serve', '--host', '127.0.0.1', '--port', String(port)];
  return spawnLogged(name, args, env, logFile, port, '/healthz');
}

/** The bare Fastify baseline (bench/apikeys-bare-server.ts), same Node and loader. */
export async function startBareServer(logFile: string): Promise<BenchServer> {
  const port = await freePort();
  const args = [...profileArgs(), '--import', TSX, `${ROOT}bench/apikeys-bare-server.ts`, String(port)];
  return spawnLogged('bare Fastify', args, {}, logFile, port, '/bare');
}
