/** A dependency that must answer before the instance takes traffic. */
export interface ReadinessCheck {
  name: string;
  /** Resolves when ready; throws (any error) when not. */
  check(): Promise<void>;
}

export interface ReadinessResult {
  name: string;
  /** Set when the check failed or timed out. */
  error?: unknown;
}

/**
 * Runs every check at once, each bounded by `timeoutMs`, and never throws.
 *
 * @example
 * const results = await runReadinessChecks([{ name: 'database', check: ping }], 2000);
 */
export async function runReadinessChecks(checks: readonly ReadinessCheck[], timeoutMs: number): Promise<ReadinessResult[]> {
  return Promise.all(
    checks.map(async ({ name, check }) => {
      try {
        await withTimeout(check(), timeoutMs, name);
        return { name };
      } catch (error) {
        return { name, error };
      }
    }),
  );
}

async function withTimeout(promise: Promise<void>, timeoutMs: number, name: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`Readiness check "${name}" timed out after ${timeoutMs} ms.`)), timeoutMs);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
