import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { BASE62_ALPHABET } from '../core/index.js';
import { API_KEY_LENGTH, API_KEY_PATTERN, generateApiKey, lastFour, maskApiKey, parseApiKey } from './format.js';

/** Replaces the character at `index` with another base62 character. */
function flip(text: string, index: number): string {
  const current = text[index] as string;
  const next = BASE62_ALPHABET[(BASE62_ALPHABET.indexOf(current) + 1) % 62] as string;
  return text.slice(0, index) + next + text.slice(index + 1);
}

describe('API key format', () => {
  it('round-trips a generated key', () => {
    for (let i = 0; i < 200; i++) {
      const { id, secret, key } = generateApiKey();
      assert.equal(key.length, API_KEY_LENGTH);
      assert.match(key, /^lk_k[0-9A-Za-z]{15}_[0-9A-Za-z]{49}$/);
      assert.ok(key.startsWith(`lk_${id}_${secret}`));
      assert.equal(secret.length, 43);
      assert.deepEqual(parseApiKey(key), { id, secret });
    }
  });

  it('appends the CRC32 of everything before it as 6 zero-padded base62 characters', () => {
    const { key } = generateApiKey();
    const body = key.slice(0, -6);
    let n = crc32(body);
    let expected = '';
    for (let i = 0; i < 6; i++) {
      expected = BASE62_ALPHABET[n % 62] + expected;
      n = Math.floor(n / 62);
    }
    assert.equal(key.slice(-6), expected);
  });

  it('draws ids and secrets that never repeat and use the whole alphabet', () => {
    const ids = new Set<string>();
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const { id, secret } = generateApiKey();
      ids.add(id);
      for (const c of secret) seen.add(c);
    }
    assert.equal(ids.size, 500);
    assert.equal(seen.size, 62);
  });

  it('refuses a flipped checksum character, at every position of the checksum', () => {
    const { key } = generateApiKey();
    for (let i = key.length - 6; i < key.length; i++) assert.equal(parseApiKey(flip(key, i)), undefined);
  });

  it('refuses a flipped character in the id or the secret (the checksum no longer matches)', () => {
    const { key } = generateApiKey();
    assert.equal(parseApiKey(flip(key, 5)), undefined);
    assert.equal(parseApiKey(flip(key, 30)), undefined);
  });

  const { key } = generateApiKey();
  const malformed: Array<[string, unknown]> = [
    ['an empty string', ''],
    ['a non-string', 42],
    ['undefined', undefined],
    ['the prefix alone', 'lk_'],
    ['a wrong prefix', `xk_${key.slice(3)}`],
    ['an upper-case prefix', `LK_${key.slice(3)}`],
    ['an id not starting with k', flip(key, 3)],
    ['a missing separator', key.slice(0, 19) + key.slice(20)],
    ['a separator in the wrong place', `${key.slice(0, 18)}_${key.slice(18, 19)}${key.slice(20)}`],
    ['one character too few', key.slice(0, -1)],
    ['one character too many', `${key}0`],
    ['a leading space', ` ${key.slice(1)}`],
    ['a trailing newline', `${key.slice(0, -1)}\n`],
    ['a non-base62 character in the secret', `${key.slice(0, 30)}-${key.slice(31)}`],
    ['a non-ASCII character', `${key.slice(0, 30)}é${key.slice(31)}`],
    ['a key inside other text', `Bearer ${key}`],
  ];
  for (const [what, text] of malformed) {
    it(`refuses ${what}`, () => {
      assert.equal(parseApiKey(text), undefined);
    });
  }

  it('masks a key as prefix, id and last four characters', () => {
    const generated = generateApiKey();
    const masked = maskApiKey(generated.id, lastFour(generated.key));
    assert.equal(masked, `lk_${generated.id}_…${generated.key.slice(-4)}`);
    assert.ok(!masked.includes(generated.secret));
  });

  it('publishes a pattern that finds keys in text and nothing shorter', () => {
    const a = generateApiKey().key;
    const b = generateApiKey().key;
    const text = `export LATCHKEY_KEY=${a}\n{"key":"${b}"} lk_${'k'.repeat(16)}_short`;
    assert.deepEqual(text.match(new RegExp(API_KEY_PATTERN, 'g')), [a, b]);
  });
});
