import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { BASE62_ALPHABET } from '../core/index.js';

/** Every Latchkey API key starts with this. */
export const API_KEY_PREFIX = 'lk_';

const ID_LENGTH = 16; // 'k' + 15 random base62 chars: about 89 bits, unique without coordination
const SECRET_LENGTH = 43; // 43 × log2(62) ≈ 256.03 bits
const CHECKSUM_LENGTH = 6; // 62^6 ≈ 5.7e10 > 2^32, so every CRC32 value fits

/** Length of a whole key: `lk_` + id + `_` + secret + checksum. */
export const API_KEY_LENGTH = API_KEY_PREFIX.length + ID_LENGTH + 1 + SECRET_LENGTH + CHECKSUM_LENGTH;

/**
 * A regular expression (source text, no flags) matching a Latchkey API key anywhere in a text, for
 * secret scanners: `lk_`, the key id (`k` + 15 base62 characters), `_`, then 49 base62 characters
 * (a 43-character secret followed by a 6-character CRC32 checksum).
 *
 * @example
 * const found = text.match(new RegExp(API_KEY_PATTERN, 'g'));
 */
export const API_KEY_PATTERN = '\\blk_k[0-9A-Za-z]{15}_[0-9A-Za-z]{49}\\b';

const SHAPE = /^lk_(k[0-9A-Za-z]{15})_([0-9A-Za-z]{43})([0-9A-Za-z]{6})$/;

/** A key's parts. `secret` is what the keyed hash is computed over. */
export interface ParsedApiKey {
  id: string;
  secret: string;
}

export interface GeneratedApiKey extends ParsedApiKey {
  /** The whole key, shown to its holder once. */
  key: string;
}

// 248 = 4 × 62: a byte below it, taken modulo 62, is uniform over the alphabet. Bytes at or above
// it are rejected rather than folded in, which would favour the first 8 characters.
const ACCEPT_BELOW = 248;

/** `length` uniformly random base62 characters, drawn from at least 32 random bytes. */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const bytes = randomBytes(Math.max(32, Math.ceil((length - out.length) * 1.1) + 4));
    for (const byte of bytes) {
      if (byte >= ACCEPT_BELOW) continue;
      out += BASE62_ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** CRC32 of `text`, as 6 base62 characters, zero-padded. */
function checksum(text: string): string {
  let n = crc32(text);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62_ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

const ID_SHAPE = /^k[0-9A-Za-z]{15}$/;

/**
 * A new API key: `lk_` + key id + `_` + secret + checksum. The id is `k` + 15 random base62
 * characters (or `id`, when rolling an existing key); the secret is 43 base62 characters (≥ 256
 * random bits, every character uniform by rejection sampling); the checksum is the CRC32 of
 * everything before it, so a mistyped or truncated key is refused before any lookup.
 *
 * @example
 * const { id, secret, key } = generateApiKey();
 * key; // 'lk_k3J98t1WpEZ73CNm_…' (69 characters)
 * generateApiKey(id).id === id; // a new secret for the same key
 */
export function generateApiKey(id: string = `k${randomBase62(ID_LENGTH - 1)}`): GeneratedApiKey {
  if (!ID_SHAPE.test(id)) throw new TypeError('"id" must be an API key id: k followed by 15 base62 characters.');
  const secret = randomBase62(SECRET_LENGTH);
  const body = `${API_KEY_PREFIX}${id}_${secret}`;
  return { id, secret, key: body + checksum(body) };
}

/**
 * The key's id and secret, or undefined when `text` does not have the exact shape of a key or its
 * checksum does not match. Nothing is looked up: a refused text costs no database or cache access.
 *
 * @example
 * parseApiKey(key);            // { id: 'k…', secret: '…' }
 * parseApiKey('lk_nonsense');  // undefined
 */
export function parseApiKey(text: unknown): ParsedApiKey | undefined {
  if (typeof text !== 'string' || text.length !== API_KEY_LENGTH) return undefined;
  const match = SHAPE.exec(text);
  if (!match) return undefined;
  if (checksum(text.slice(0, -CHECKSUM_LENGTH)) !== match[3]) return undefined;
  return { id: match[1] as string, secret: match[2] as string };
}

/**
 * The last four characters of a key: checksum characters, which the holder recognises at the end of
 * the key. Being part of a CRC32 of the secret they reveal at most about 24 bits about it, leaving
 * more than 232 bits unknown.
 */
export function lastFour(key: string): string {
  return key.slice(-4);
}

/**
 * The form of a key shown everywhere after creation: prefix, id and its last four characters.
 *
 * @example
 * maskApiKey('k3J98t1WpEZ73CNm', 'x9Qz'); // 'lk_k3J98t1WpEZ73CNm_…x9Qz'
 */
export function maskApiKey(id: string, last4: string): string {
  return `${API_KEY_PREFIX}${id}_…${last4}`;
}
