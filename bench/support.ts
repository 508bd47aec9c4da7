// Helpers shared by the benchmarks: what machine ran them, percentiles, tables, and writing one
// section of BENCHMARKS.md without touching the others.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg, platform, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** BENCHMARKS.md at the repository root. */
export const BENCHMARKS_FILE = fileURLToPath(new URL('../BENCHMARKS.md', import.meta.url));

const INTRO = `# Benchmarks

Figures produced by the scripts in \`bench/\`. Each section names the command, the date and the
machine that produced it; re-run that command (in full mode) to refresh it. A script replaces only
its own section. Benchmarks are never timed assertions in tests.
`;

/** How a benchmark was asked to run: full figures, or a quick smoke run that writes nothing. */
export interface BenchMode {
  quick: boolean;
  label: string;
}

export function parseMode(argv: readonly string[]): BenchMode {
  const unknown = argv.filter((arg) => arg !== '--quick');
  if (unknown.length > 0) {
    throw new TypeError(`Unknown argument ${unknown[0]}; the only option is --quick (a smoke run).`);
  }
  const quick = argv.includes('--quick');
  return { quick, label: quick ? 'QUICK (smoke run, smaller counts; figures not recorded)' : 'full' };
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  /** 1-minute load average when the benchmark started: other work on the machine skews figures. */
  loadAtStart: number;
}

export function describeMachine(): Machine {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? 'unknown CPU',
    cores: list.length,
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    os: `${platform()} ${release()} ${arch()}`,
    loadAtStart: loadavg()[0] ?? 0,
  };
}

/** One line naming the machine, plus any extra `name version` pairs (database servers). */
export function machineLine(machine: Machine, extra: Record<string, string> = {}): string {
  const parts = [
    `${machine.cpu}, ${machine.cores} cores`,
    `${machine.memoryGiB.toFixed(1)} GiB RAM`,
    machine.os,
    `Node ${machine.node}`,
    ...Object.entries(extra).map(([name, version]) => `${name} ${version}`),
    `1-minute load average at start ${machine.loadAtStart.toFixed(2)}`,
  ];
  return parts.join('; ');
}

/** Nearest-rank percentile (`p` in 0..100) of values sorted ascending. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1] as number;
}

export function sortedCopy(values: readonly number[]): Float64Array {
  return Float64Array.from(values).sort();
}

/** Per-op figures of one timed operation. Times in milliseconds. */
export interface OpStats {
  name: string;
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** Collects the duration of every call of one operation, across rounds. */
export interface Runner {
  name: string;
  samples: number[];
  totalMs: number;
}

export function runner(name: string): Runner {
  return { name, samples: [], totalMs: 0 };
}

function record(r: Runner | undefined, ms: number): void {
  if (!r) return;
  r.samples.push(ms);
  r.totalMs += ms;
}

/** Runs `op` back to back for `ms`, timing each call into `r` (none: a warm-up). */
export function runFor(r: Runner | undefined, op: () => void, ms: number): void {
  let t = performance.now();
  const end = t + ms;
  while (t < end) {
    op();
    const next = performance.now();
    record(r, next - t);
    t = next;
  }
}

/** Runs the asynchronous `op` back to back (one at a time) for `ms`, timing each call into `r` (none: a warm-up). */
export async function runForAsync(r: Runner | undefined, op: () => Promise<void>, ms: number): Promise<void> {
  let t = performance.now();
  const end = t + ms;
  while (t < end) {
    await op();
    const next = performance.now();
    record(r, next - t);
    t = next;
  }
}

/** Runs the asynchronous `op` `count` times, one at a time, timing each call into `r`. */
export async function runCount(r: Runner | undefined, op: () => Promise<void>, count: number): Promise<void> {
  let t = performance.now();
  for (let i = 0; i < count; i++) {
    await op();
    const next = performance.now();
    record(r, next - t);
    t = next;
  }
}

export function stats(r: Runner): OpStats {
  const sorted = sortedCopy(r.samples);
  return {
    name: r.name,
    ops: r.samples.length,
    opsPerSec: r.samples.length / (r.totalMs / 1000),
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
  };
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - start };
}

/** `12,345` */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** A duration given in milliseconds, in the unit that reads best. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  if (ms < 1) return `${(ms * 1000).toFixed(ms < 0.01 ? 2 : 1)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatPercent(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio < 0.01 ? 2 : 1)}%`;
}

/** A GitHub-flavoured Markdown table; columns after the first are right-aligned. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  const rule = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [line(header), line(rule), ...rows.map(line)].join('\n');
}

/** The same table padded for a terminal. */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/**
 * Writes `body` under `heading` (a `## ` line) in BENCHMARKS.md: replaces that section if it is
 * there (up to the next `## ` heading), appends it otherwise, and creates the file with a short
 * introduction when it is missing. Every other section is kept as it is.
 */
export function writeBenchmarkSection(heading: string, body: string, file = BENCHMARKS_FILE): void {
  if (!heading.startsWith('## ')) throw new TypeError('"heading" must be a level-2 Markdown heading ("## ...").');
  const current = existsSync(file) ? readFileSync(file, 'utf8') : INTRO;
  const lines = current.split('\n');
  const section = `${heading}\n\n${body.trim()}\n`;
  const start = lines.findIndex((l) => l.trimEnd() === heading);
  let next: string;
  if (start === -1) {
    next = `${current.trimEnd()}\n\n${section}`;
  } else {
    const after = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    const before = lines.slice(0, start).join('\n').trimEnd();
    const rest = after === -1 ? '' : lines.slice(after).join('\n').trim();
    next = [before, section.trimEnd(), rest].filter((part) => part !== '').join('\n\n') + '\n';
  }
  writeFileSync(file, next.endsWith('\n') ? next : `${next}\n`);
}

/**
 * Prints a benchmark's tables, met/missed per target and notes; in full mode, writes its section of
 * BENCHMARKS.md (quick mode writes nothing).
 */
export function publish(
  mode: BenchMode,
  heading: string,
  out: { text: string[]; verdicts: Array<{ target: string; measured: string; met: boolean }>; notes: string[]; section: () => string },
): void {
  process.stdout.write(`\n${out.text.join('\n\n')}\n\n`);
  for (const v of out.verdicts) process.stdout.write(`${v.met ? 'met   ' : 'MISSED'} ${v.target}: ${v.measured}\n`);
  for (const n of out.notes) process.stdout.write(`- ${n}\n`);
  if (mode.quick) {
    process.stderr.write('Quick mode: BENCHMARKS.md left unchanged; run without --quick to record figures.\n');
    return;
  }
  writeBenchmarkSection(heading, out.section());
  process.stderr.write(`Wrote the "${heading.slice(3)}" section of BENCHMARKS.md.\n`);
}
