import ms from 'ms';

/**
 * Parses a duration given as `"10m"`-style text or as milliseconds. Returns undefined for anything
 * else (negative, not finite, unknown unit), so callers can word their own error.
 *
 * @example
 * parseDuration('10m') // 600000
 * parseDuration(250)   // 250
 */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const parsed = ms(text as ms.StringValue) as number | undefined;
  return typeof parsed === 'number' && Number.isFinite(parsed) && parsed >= 0 ? parsed : undefined;
}
