import { distance } from 'fastest-levenshtein';

const MAX_SUGGESTIONS = 3;

/**
 * The ids nearest to `wanted`, nearest first, at most three: a case-insensitive exact match alone,
 * else those within an edit distance of about 40% of its length, or containing it (or contained in
 * it). Empty when nothing is near.
 *
 * @example
 * nearestIds(['github', 'gitlab', 'google'], 'gihub'); // ['github']
 * nearestIds(['microsoft'], 'microsoft-graph'); // ['microsoft']
 */
export function nearestIds(ids: readonly string[], wanted: string): string[] {
  const query = wanted.toLowerCase();
  if (ids.includes(query)) return [query];
  const limit = Math.max(1, Math.ceil(query.length * 0.4));
  return ids
    .map((id) => ({ id, d: distance(query, id) }))
    .filter(({ id, d }) => d <= limit || (id.length >= 3 && query.includes(id)) || (query.length >= 3 && id.includes(query)))
    .sort((a, b) => a.d - b.d || (a.id < b.id ? -1 : 1))
    .slice(0, MAX_SUGGESTIONS)
    .map(({ id }) => id);
}

/** `a`, `a or b`, `a, b or c`. */
export function orList(ids: readonly string[]): string {
  return ids.length <= 1 ? ids.join('') : `${ids.slice(0, -1).join(', ')} or ${String(ids.at(-1))}`;
}
