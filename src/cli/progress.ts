import cliProgress from 'cli-progress';

/** Progress of a long command: a bar with counts and rate on a terminal, plain lines otherwise. */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Minimum time between plain lines when not on a terminal. */
  intervalMs?: number;
}

/**
 * @example
 * const progress = createProgress('Re-encrypting objects');
 * progress.update(5000, 100000);
 * progress.stop();
 */
export function createProgress(label: string, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const started = Date.now();
  const rate = (done: number) => {
    const seconds = (Date.now() - started) / 1000;
    return seconds > 0 ? Math.round(done / seconds) : 0;
  };

  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} [{bar}] {value}/{total} | {rate}/s | eta {eta_formatted}`,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let begun = false;
    return {
      update(done, total) {
        if (!begun) {
          bar.start(total, 0, { rate: 0 });
          begun = true;
        }
        bar.setTotal(total);
        bar.update(done, { rate: rate(done) });
      },
      stop() {
        if (begun) bar.stop();
      },
    };
  }

  const intervalMs = options.intervalMs ?? 1000;
  let lastLine = 0;
  let last: { done: number; total: number } | undefined;
  const write = (done: number, total: number) => {
    stream.write(`${label}: ${done}/${total} (${rate(done)}/s)\n`);
    lastLine = Date.now();
  };
  return {
    update(done, total) {
      last = { done, total };
      if (Date.now() - lastLine >= intervalMs) write(done, total);
    },
    stop() {
      if (last) write(last.done, last.total);
    },
  };
}
