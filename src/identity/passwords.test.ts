import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { generatePassword, hashPassword, verifyPassword } from './index.js';

const secret = () => generatePassword(20);

describe('password hashing', () => {
  it('encodes scrypt N=2^15, r=8, p=1 with a 16-byte salt and a 32-byte hash', async () => {
    const password = secret();
    const encoded = await hashPassword(password);
    const match = /^scrypt\$15\$8\$1\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(encoded);
    assert.ok(match, encoded);
    assert.equal(Buffer.from(match[1] ?? '', 'base64').length, 16);
    assert.equal(Buffer.from(match[2] ?? '', 'base64').length, 32);
    assert.ok(!encoded.includes(password));
  });

  it('accepts the right password and refuses a wrong one', async () => {
    const password = secret();
    const encoded = await hashPassword(password);
    assert.equal(await verifyPassword(password, encoded), true);
    assert.equal(await verifyPassword(`${password}x`, encoded), false);
    assert.equal(await verifyPassword(secret(), encoded), false);
    assert.equal(await verifyPassword('', encoded), false);
  });

  it('salts every hash', async () => {
    const password = secret();
    const [a, b] = await Promise.all([hashPassword(password), hashPassword(password)]);
    assert.notEqual(a, b);
    assert.equal(await verifyPassword(password, a), true);
    assert.equal(await verifyPassword(password, b), true);
  });

  it('treats the password as Unicode text (NFC)', async () => {
    const composed = `caf\u00e9-${secret()}`;
    const decomposed = composed.normalize('NFD');
    assert.notEqual(composed, decomposed);
    assert.equal(await verifyPassword(decomposed, await hashPassword(composed)), true);
  });

  it('answers false for malformed or hostile hashes', async () => {
    const password = secret();
    const good = await hashPassword(password);
    const [, , r, p, salt, hash] = good.split('$');
    const bad = [
      '',
      'plain',
      `sha256$${hash}`,
      `scrypt$15$${r}$${p}$${salt}`,
      `scrypt$15$${r}$${p}$${salt}$${randomBytes(16).toString('base64')}`,
      `scrypt$15$${r}$${p}$${randomBytes(4).toString('base64')}$${hash}`,
      `scrypt$40$${r}$${p}$${salt}$${hash}`,
      `scrypt$15$99$${p}$${salt}$${hash}`,
      `scrypt$x$${r}$${p}$${salt}$${hash}`,
    ];
    for (const encoded of bad) assert.equal(await verifyPassword(password, encoded), false, encoded);
  });

  it('generates base62 passwords of the asked length', () => {
    const password = generatePassword(24);
    assert.match(password, /^[0-9A-Za-z]{24}$/);
    assert.notEqual(generatePassword(24), password);
  });
});
