import { randomBytes } from 'node:crypto';
import baseX from 'base-x';

export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Base62 codec (digits, upper, lower): URL-safe and double-click selectable. */
export const base62 = baseX(BASE62_ALPHABET);

/**
 * A new random identifier: `prefix_` followed by 128 random bits in base62.
 *
 * @example
 * newId('obj') // 'obj_3J98t1WpEZ73CNmQviecrn'
 */
export function newId(prefix: string): string {
  return `${prefix}_${base62.encode(randomBytes(16))}`;
}
