import { randomBytes, randomInt, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { BASE62_ALPHABET } from '../core/index.js';

// scrypt with N = 2^15, r = 8, p = 1 (about 32 MiB and tens of milliseconds per hash): slow on
// purpose, and never weakened for tests.
const LOG_N = 15;
const R = 8;
const P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
// Limits on the parameters a stored hash may name, so a tampered row cannot make verification
// take unbounded memory or time.
const MAX_LOG_N = 20;
const MAX_R = 16;
const MAX_P = 4;

/** Shortest password a user may set. */
export const MIN_PASSWORD_LENGTH = 12;
/** Longest password accepted (hashing cost does not grow with it, but request bodies should stay small). */
export const MAX_PASSWORD_LENGTH = 1024;

function derive(password: string, salt: Buffer, logN: number, r: number, p: number): Promise<Buffer> {
  const N = 2 ** logN;
  const options: ScryptOptions = { N, r, p, maxmem: 128 * N * r * p + 16 * 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, HASH_BYTES, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * Hashes a password with scrypt and a fresh 16-byte salt.
 *
 * @example
 * await hashPassword('correct horse battery staple'); // 'scrypt$15$8$1$<salt b64>$<hash b64>'
 */
export async function hashPassword(password: string): Promise<string> {
  if (typeof password !== 'string') throw new TypeError('"password" must be a string.');
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, LOG_N, R, P);
  return `scrypt$${LOG_N}$${R}$${P}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * Whether `password` matches `encoded` (from {@link hashPassword}), compared in constant time.
 * A malformed hash answers false.
 *
 * @example
 * await verifyPassword('correct horse battery staple', stored); // true
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  if (typeof password !== 'string' || typeof encoded !== 'string') return false;
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [logN, r, p] = parts.slice(1, 4).map((s) => (/^\d{1,2}$/.test(s ?? '') ? Number(s) : NaN)) as [number, number, number];
  if (!(logN >= 1 && logN <= MAX_LOG_N && r >= 1 && r <= MAX_R && p >= 1 && p <= MAX_P)) return false;
  const salt = Buffer.from(parts[4] ?? '', 'base64');
  const expected = Buffer.from(parts[5] ?? '', 'base64');
  if (salt.length < SALT_BYTES || expected.length !== HASH_BYTES) return false;
  const actual = await derive(password, salt, logN, r, p);
  return timingSafeEqual(actual, expected);
}

/**
 * A hash no password matches, with the same cost as a real one: verifying against it when the
 * user does not exist makes a failed login take as long whichever way it fails.
 */
export const UNMATCHABLE_PASSWORD_HASH = `scrypt$${LOG_N}$${R}$${P}$${Buffer.alloc(SALT_BYTES).toString('base64')}$${Buffer.alloc(HASH_BYTES).toString('base64')}`;

/**
 * A random password of `length` base62 characters (about 5.95 bits each).
 *
 * @example
 * generatePassword(24); // 'q3ZkP0...'
 */
export function generatePassword(length = 24): string {
  let out = '';
  for (let i = 0; i < length; i++) out += BASE62_ALPHABET[randomInt(BASE62_ALPHABET.length)];
  return out;
}
