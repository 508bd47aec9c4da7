// Load generation shared by the HTTP benchmarks: autocannon in this process against a server in a
// child process, with the CPU time each side spent per answered request (from /proc on Linux).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { BenchServer } from './apikeys-servers.js';

/** The part of autocannon's options and results used here (the package ships no types). */
interface AutocannonOptions {
  url: string;
  connections: number;
  duration: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: { p50: number; p99: number; average: number };
  throughput: { total: number };
  statusCodeStats?: Record<string, { count: number }>;
}
type Autocannon = (options: AutocannonOptions) => Promise<AutocannonResult>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

export interface HttpSettings {
  connections: number;
  durationS: number;
  warmupS: number;
  /** Timed runs per server, alternating A B B A ... */
  runs: number;
}

/** One request shape to put under load. */
export interface LoadTarget {
  /** Whose CPU time is charged to the requests: the server, and any upstream it calls. */
  server: BenchServer;
  also?: BenchServer[];
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadRun {
  requestsPerSec: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time the server process used per answered request (user + system), when /proc has it. */
  serverCpuUsPerRequest: number | undefined;
  /** CPU time this process (autocannon) used per answered request. */
  clientCpuUsPerRequest: number;
  /** Response bytes (headers and bodies) read per second. */
  bytesPerSec: number;
}

export interface LoadSummary {
  name: string;
  runs: LoadRun[];
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  serverCpuUsPerRequest: number | undefined;
  clientCpuUsPerRequest: number;
  bytesPerSec: number;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** User + system CPU seconds of a process, from /proc (Linux); undefined elsewhere. */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Puts `target` under autocannon's load for `durationS`; any non-2xx answer or error fails the run. */
export async function load(target: LoadTarget, connections: number, durationS: number): Promise<LoadRun> {
  const pids = [target.server, ...(target.also ?? [])].map((s) => s.child.pid);
  const cpu = () => pids.reduce<number | undefined>((sum, pid) => {
    const seconds = processCpuSeconds(pid);
    return sum === undefined || seconds === undefined ? undefined : sum + seconds;
  }, 0);
  const serverCpu = cpu();
  const clientCpu = process.cpuUsage();
  const result = await autocannon({
    url: `${target.server.url}${target.path}`,
    connections,
    duration: durationS,
    ...(target.method ? { method: target.method } : {}),
    ...(target.headers ? { headers: target.headers } : {}),
    ...(target.body !== undefined ? { body: target.body } : {}),
  });
  const clientUsed = process.cpuUsage(clientCpu);
  const serverAfter = cpu();
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(
      `${target.server.name} ${target.path}: ${result.non2xx} non-2xx answers and ${result.errors} errors under load ` +
        `(${JSON.stringify(result.statusCodeStats ?? {})}); the figure would be meaningless`,
    );
  }
  const requests = result['2xx'];
  return {
    requestsPerSec: requests / result.duration,
    requests,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    serverCpuUsPerRequest: serverCpu === undefined || serverAfter === undefined ? undefined : ((serverAfter - serverCpu) * 1e6) / requests,
    clientCpuUsPerRequest: (clientUsed.user + clientUsed.system) / requests,
    bytesPerSec: result.throughput.total / result.duration,
  };
}

export function summarise(name: string, runs: LoadRun[]): LoadSummary {
  const mean = (f: (r: LoadRun) => number) => runs.reduce((s, r) => s + f(r), 0) / runs.length;
  const serverCpu = runs.every((r) => r.serverCpuUsPerRequest !== undefined) ? mean((r) => r.serverCpuUsPerRequest as number) : undefined;
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  const seconds = runs.reduce((s, r) => s + r.requests / r.requestsPerSec, 0);
  return {
    name,
    runs,
    requestsPerSec: requests / seconds,
    p50Ms: mean((r) => r.p50Ms),
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    serverCpuUsPerRequest: serverCpu,
    clientCpuUsPerRequest: mean((r) => r.clientCpuUsPerRequest),
    bytesPerSec: runs.reduce((s, r) => s + r.bytesPerSec * (r.requests / r.requestsPerSec), 0) / seconds,
  };
}


/** A target and the runs measured on it. */
export interface MeasuredTarget extends LoadTarget {
  name: string;
  runs: LoadRun[];
  /** Connections to load it with, when not the settings' (and its own loader, `load` otherwise). */
  connections?: number;
  loader?: (target: LoadTarget, connections: number, durationS: number) => Promise<LoadRun>;
}

/** Warms every target up, then runs each `settings.runs` times in alternating order (A B B A ...). */
export async function runAlternating(prefix: string, targets: MeasuredTarget[], settings: HttpSettings, log: (message: string) => void): Promise<void> {
  const once = (t: MeasuredTarget, seconds: number) => (t.loader ?? load)(t, t.connections ?? settings.connections, seconds);
  for (const t of targets) {
    log(`${prefix}: warming up ${t.name} (${settings.warmupS} s)`);
    await once(t, settings.warmupS);
  }
  for (let round = 0; round < settings.runs; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      log(`${prefix}: ${t.name}, run ${round + 1} of ${settings.runs} (${t.connections ?? settings.connections} connections, ${settings.durationS} s)`);
      t.runs.push(await once(t, settings.durationS));
    }
  }
}
