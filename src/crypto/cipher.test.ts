import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { buildAad, type AadInput } from './aad.js';
import {
  CIPHER_FORMAT_VERSION,
  CipherError,
  aesGcmDecrypt,
  aesGcmEncrypt,
  open,
  readKeyId,
  seal,
  type CipherErrorReason,
} from './cipher.js';

const hex = (text: string): Buffer => Buffer.from(text, 'hex');

interface Vector {
  name: string;
  key: string;
  iv: string;
  pt: string;
  aad: string;
  ct: string;
  tag: string;
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 13-16 (AES-256), and
// NIST CAVP gcmEncryptExtIV256.rsp, [Keylen = 256] [IVlen = 96] [Taglen = 128].
const VECTORS: Vector[] = [
  {
    name: 'GCM spec test case 13 (empty plaintext, no AAD)',
    key: '0000000000000000000000000000000000000000000000000000000000000000',
    iv: '000000000000000000000000',
    pt: '',
    aad: '',
    ct: '',
    tag: '530f8afbc74536b9a963b4f1c4cb738b',
  },
  {
    name: 'GCM spec test case 14 (one zero block)',
    key: '0000000000000000000000000000000000000000000000000000000000000000',
    iv: '000000000000000000000000',
    pt: '00000000000000000000000000000000',
    aad: '',
    ct: 'cea7403d4d606b6e074ec5d3baf39d18',
    tag: 'd0d1c8a799996bf0265b98b5d48ab919',
  },
  {
    name: 'GCM spec test case 15 (64-byte plaintext)',
    key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308',
    iv: 'cafebabefacedbaddecaf888',
    pt:
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72' +
      '1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255',
    aad: '',
    ct:
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa' +
      '8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad',
    tag: 'b094dac5d93471bdec1a502270e3cc6c',
  },
  {
    name: 'GCM spec test case 16 (60-byte plaintext, 20-byte AAD)',
    key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308',
    iv: 'cafebabefacedbaddecaf888',
    pt:
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72' +
      '1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39',
    aad: 'feedfacedeadbeeffeedfacedeadbeefabaddad2',
    ct:
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa' +
      '8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662',
    tag: '76fc6ece0f4e1768cddf8853bb2d551b',
  },
  {
    name: 'CAVP PTlen=0 AADlen=0 Count=0',
    key: 'b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4',
    iv: '516c33929df5a3284ff463d7',
    pt: '',
    aad: '',
    ct: '',
    tag: 'bdc1ac884d332457a1d2664f168c76f0',
  },
  {
    name: 'CAVP PTlen=0 AADlen=128 Count=0',
    key: '78dc4e0aaf52d935c3c01eea57428f00ca1fd475f5da86a49c8dd73d68c8e223',
    iv: 'd79cf22d504cc793c3fb6c8a',
    pt: '',
    aad: 'b96baa8c1c75a671bfb2d08d06be5f36',
    ct: '',
    tag: '3e5d486aa2e30b22e040b85723a06e76',
  },
  {
    name: 'CAVP PTlen=0 AADlen=128 Count=1',
    key: '4457ff33683cca6ca493878bdc00373893a9763412eef8cddb54f91318e0da88',
    iv: '699d1f29d7b8c55300bb1fd2',
    pt: '',
    aad: '6749daeea367d0e9809e2dc2f309e6e3',
    ct: '',
    tag: 'd60c74d2517fde4a74e0cd4709ed43a9',
  },
  {
    name: 'CAVP PTlen=408 AADlen=128 Count=0',
    key: '5fe01c4baf01cbe07796d5aaef6ec1f45193a98a223594ae4f0ef4952e82e330',
    iv: 'bd587321566c7f1a5dd8652d',
    pt: '881dc6c7a5d4509f3c4bd2daab08f165ddc204489aa8134562a4eac3d0bcad7965847b102733bb63d1e5c598ece0c3e5dadddd',
    aad: '9013617817dda947e135ee6dd3653382',
    ct: '16e375b4973b339d3f746c1c5a568bc7526e909ddff1e19c95c94a6ccff210c9a4a40679de5760c396ac0e2ceb1234f9f5fe26',
    tag: 'abd3d26d65a6275f7a4f56b422acab49',
  },
];

const KEY_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';

function randomKeyId(): string {
  return Array.from(randomBytes(randomInt(1, 65)), (byte) => KEY_ID_ALPHABET[byte % 64]).join('');
}

function errorOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  assert.fail('expected a throw');
}

/** Asserts `fn` throws a CipherError with `reason`, and returns its message for leak checks. */
function expectCipherError(fn: () => unknown, reason: CipherErrorReason, note = ''): string {
  const error = errorOf(fn);
  assert.ok(error instanceof CipherError, `expected a CipherError ${note}, got ${String(error)}`);
  assert.equal(error.reason, reason, note);
  assert.equal(error.name, 'CipherError');
  assert.match(error.message, /^[A-Z][^\n]*\.$/, 'one sentence');
  return error.message;
}

function flipBit(sealed: string, byteIndex: number, bit: number): string {
  const bytes = Buffer.from(sealed, 'base64');
  bytes[byteIndex] = (bytes[byteIndex] ?? 0) ^ (1 << bit);
  return bytes.toString('base64');
}

describe('aesGcmEncrypt / aesGcmDecrypt known answers', () => {
  for (const vector of VECTORS) {
    it(vector.name, () => {
      const { ciphertext, tag } = aesGcmEncrypt(hex(vector.key), hex(vector.iv), hex(vector.pt), hex(vector.aad));
      assert.equal(ciphertext.toString('hex'), vector.ct);
      assert.equal(tag.toString('hex'), vector.tag);
      const plaintext = aesGcmDecrypt(hex(vector.key), hex(vector.iv), hex(vector.ct), hex(vector.tag), hex(vector.aad));
      assert.equal(plaintext.toString('hex'), vector.pt);
    });
  }

  it('refuses a vector whose tag, AAD or ciphertext was changed', () => {
    const vector = VECTORS[3]!;
    const tag = hex(vector.tag);
    tag[0] = tag[0]! ^ 1;
    expectCipherError(
      () => aesGcmDecrypt(hex(vector.key), hex(vector.iv), hex(vector.ct), tag, hex(vector.aad)),
      'authentication_failed',
    );
    expectCipherError(
      () => aesGcmDecrypt(hex(vector.key), hex(vector.iv), hex(vector.ct), hex(vector.tag), Buffer.alloc(0)),
      'authentication_failed',
    );
    const ct = hex(vector.ct);
    ct[59] = ct[59]! ^ 0x80;
    expectCipherError(
      () => aesGcmDecrypt(hex(vector.key), hex(vector.iv), ct, hex(vector.tag), hex(vector.aad)),
      'authentication_failed',
    );
  });

  it('refuses truncated tags instead of checking fewer bits', () => {
    const vector = VECTORS[3]!;
    for (const length of [0, 4, 8, 12, 15]) {
      assert.throws(
        () => aesGcmDecrypt(hex(vector.key), hex(vector.iv), hex(vector.ct), hex(vector.tag).subarray(0, length), hex(vector.aad)),
        TypeError,
      );
    }
  });

  it('refuses keys that are not 32 bytes and nonces that are not 12 bytes', () => {
    for (const length of [0, 16, 24, 31, 33]) {
      assert.throws(() => aesGcmEncrypt(randomBytes(length), randomBytes(12), Buffer.alloc(1), Buffer.alloc(0)), TypeError);
    }
    for (const length of [0, 8, 11, 13, 16]) {
      assert.throws(() => aesGcmEncrypt(randomBytes(32), randomBytes(length), Buffer.alloc(1), Buffer.alloc(0)), TypeError);
    }
  });
});

describe('seal / open', () => {
  it('round-trips random plaintexts under random keys, key ids and AAD', () => {
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(32);
      const keyId = randomKeyId();
      const plaintext = randomBytes(randomInt(0, 2048));
      const aad = randomBytes(randomInt(0, 256));
      const sealed = seal(key, keyId, plaintext, aad);
      assert.equal(readKeyId(sealed), keyId);
      assert.deepEqual(open(key, sealed, aad), plaintext);
    }
  });

  it('writes the documented layout', () => {
    const key = randomBytes(32);
    const plaintext = randomBytes(40);
    const bytes = Buffer.from(seal(key, 'mk_abc', plaintext, Buffer.alloc(0)), 'base64');
    assert.equal(bytes[0], CIPHER_FORMAT_VERSION);
    assert.equal(bytes[1], 6);
    assert.equal(bytes.toString('latin1', 2, 8), 'mk_abc');
    assert.equal(bytes.length, 8 + 12 + 16 + plaintext.length);
    // The header is authenticated with the caller's AAD: GCM AAD = header || aad.
    const opened = aesGcmDecrypt(key, bytes.subarray(8, 20), bytes.subarray(36), bytes.subarray(20, 36), bytes.subarray(0, 8));
    assert.deepEqual(opened, plaintext);
  });

  it('uses a fresh nonce for every seal', () => {
    const key = randomBytes(32);
    const plaintext = randomBytes(32);
    const nonces = new Set<string>();
    let previous = '';
    for (let i = 0; i < 100; i++) {
      const sealed = seal(key, 'k', plaintext, Buffer.alloc(0));
      assert.notEqual(sealed, previous);
      previous = sealed;
      nonces.add(Buffer.from(sealed, 'base64').subarray(3, 15).toString('hex'));
    }
    assert.equal(nonces.size, 100);
  });

  it('refuses bad key ids and keys when sealing', () => {
    for (const keyId of ['', 'a'.repeat(65), 'a b', 'mk.1', 'clé', 'a\n']) {
      assert.throws(() => seal(randomBytes(32), keyId, Buffer.alloc(1), Buffer.alloc(0)), TypeError, keyId);
    }
    assert.ok(seal(randomBytes(32), 'a'.repeat(64), Buffer.alloc(1), Buffer.alloc(0)));
    assert.throws(() => seal(randomBytes(31), 'k', Buffer.alloc(1), Buffer.alloc(0)), TypeError);
    assert.throws(() => open(randomBytes(33), seal(randomBytes(32), 'k', Buffer.alloc(1), Buffer.alloc(0)), Buffer.alloc(0)), TypeError);
  });

  it('opens an empty plaintext', () => {
    const key = randomBytes(32);
    const sealed = seal(key, 'k', Buffer.alloc(0), Buffer.from('aad'));
    assert.equal(open(key, sealed, Buffer.from('aad')).length, 0);
  });
});

describe('open refuses altered values', () => {
  const key = randomBytes(32);
  const keyId = 'mk_0123456789ab';
  const plaintext = randomBytes(48);
  const aad = randomBytes(24);
  const sealed = seal(key, keyId, plaintext, aad);
  const headerLength = 2 + keyId.length;
  const messages: string[] = [];

  it('a flipped bit in the version byte is unsupported_version', () => {
    for (let bit = 0; bit < 8; bit++) {
      messages.push(expectCipherError(() => open(key, flipBit(sealed, 0, bit), aad), 'unsupported_version'));
      expectCipherError(() => readKeyId(flipBit(sealed, 0, bit)), 'unsupported_version');
    }
  });

  it('a flipped bit in the key id length never opens', () => {
    for (let bit = 0; bit < 8; bit++) {
      const error = errorOf(() => open(key, flipBit(sealed, 1, bit), aad));
      assert.ok(error instanceof CipherError);
      assert.ok(error.reason === 'malformed' || error.reason === 'authentication_failed', error.reason);
      messages.push(error.message);
    }
  });

  it('a flipped bit in the key id is malformed or authentication_failed, never a success', () => {
    for (let index = 2; index < headerLength; index++) {
      for (let bit = 0; bit < 8; bit++) {
        const altered = flipBit(sealed, index, bit);
        const alteredId = Buffer.from(altered, 'base64').toString('latin1', 2, headerLength);
        const reason = /^[A-Za-z0-9_-]+$/.test(alteredId) ? 'authentication_failed' : 'malformed';
        messages.push(expectCipherError(() => open(key, altered, aad), reason, `byte ${index} bit ${bit}`));
      }
    }
  });

  it('another valid key id over the same key does not open (the header is in the AAD)', () => {
    const bytes = Buffer.from(sealed, 'base64');
    bytes.write('mk_0123456789ac', 2, 'latin1');
    const altered = bytes.toString('base64');
    assert.equal(readKeyId(altered), 'mk_0123456789ac');
    messages.push(expectCipherError(() => open(key, altered, aad), 'authentication_failed'));
  });

  it('a flipped bit in the nonce, tag or body is authentication_failed', () => {
    const total = Buffer.from(sealed, 'base64').length;
    for (let index = headerLength; index < total; index++) {
      for (let bit = 0; bit < 8; bit++) {
        messages.push(expectCipherError(() => open(key, flipBit(sealed, index, bit), aad), 'authentication_failed'));
      }
    }
  });

  it('a wrong key is authentication_failed', () => {
    messages.push(expectCipherError(() => open(randomBytes(32), sealed, aad), 'authentication_failed'));
  });

  it('other AAD is authentication_failed', () => {
    messages.push(expectCipherError(() => open(key, sealed, Buffer.alloc(0)), 'authentication_failed'));
    messages.push(expectCipherError(() => open(key, sealed, Buffer.concat([aad, Buffer.of(0)])), 'authentication_failed'));
    messages.push(expectCipherError(() => open(key, sealed, aad.subarray(1)), 'authentication_failed'));
  });

  it('every truncation is malformed up to header + nonce + tag', () => {
    const bytes = Buffer.from(sealed, 'base64');
    for (let length = 0; length < headerLength + 28; length++) {
      const truncated = bytes.subarray(0, length).toString('base64');
      messages.push(expectCipherError(() => open(key, truncated, aad), 'malformed', `length ${length}`));
      expectCipherError(() => readKeyId(truncated), 'malformed', `length ${length}`);
    }
    // Exactly header + nonce + tag is a well-formed empty body, which then fails to authenticate.
    const bodyless = bytes.subarray(0, headerLength + 28).toString('base64');
    messages.push(expectCipherError(() => open(key, bodyless, aad), 'authentication_failed'));
    for (let length = headerLength + 29; length < bytes.length; length++) {
      const truncated = bytes.subarray(0, length).toString('base64');
      messages.push(expectCipherError(() => open(key, truncated, aad), 'authentication_failed', `length ${length}`));
    }
  });

  it('an empty value is malformed', () => {
    messages.push(expectCipherError(() => open(key, '', aad), 'malformed'));
    expectCipherError(() => readKeyId(''), 'malformed');
  });

  it('bad base64 is malformed', () => {
    const padded = seal(key, keyId, randomBytes(49), aad);
    assert.ok(padded.endsWith('=='));
    const bad = [
      '!!!!',
      'AQ',
      'AQ=',
      'AQ==AQ==',
      `${sealed.slice(0, 8)}*${sealed.slice(9)}`,
      `${sealed}\n`,
      ` ${sealed}`,
      `${sealed.slice(0, 20)}\n${sealed.slice(20)}`,
      sealed.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') + '-_',
      padded.replace(/=+$/, ''),
      `${sealed}=`,
      `${padded}=`,
      // Non-canonical: the last character carries bits that decoding drops.
      'AQB=',
    ];
    for (const value of bad) {
      messages.push(expectCipherError(() => open(key, value, aad), 'malformed', JSON.stringify(value)));
    }
  });

  it('a value from another format version is unsupported_version', () => {
    const bytes = Buffer.from(sealed, 'base64');
    for (const version of [0, 2, 255]) {
      bytes[0] = version;
      messages.push(expectCipherError(() => open(key, bytes.toString('base64'), aad), 'unsupported_version'));
    }
  });

  it('a key id with characters outside the alphabet is malformed', () => {
    const bytes = Buffer.from(sealed, 'base64');
    bytes[2] = 0x2e; // '.'
    messages.push(expectCipherError(() => open(key, bytes.toString('base64'), aad), 'malformed'));
    bytes[1] = 0;
    messages.push(expectCipherError(() => open(key, bytes.toString('base64'), aad), 'malformed'));
    bytes[1] = 65;
    messages.push(expectCipherError(() => open(key, bytes.toString('base64'), aad), 'malformed'));
  });

  it('neither the sealed value nor any error message holds the plaintext or key', () => {
    assert.ok(messages.length > 500);
    const secrets = [plaintext, key].flatMap((bytes) => [bytes.toString('hex'), bytes.toString('base64')]);
    for (const secret of secrets) {
      assert.ok(!sealed.includes(secret));
      for (const message of new Set(messages)) assert.ok(!message.includes(secret), message);
    }
    const sealedBytes = Buffer.from(sealed, 'base64');
    assert.ok(!sealedBytes.includes(plaintext.subarray(0, 8)));
    assert.ok(!sealedBytes.includes(key.subarray(0, 8)));
  });
});

describe('open with AAD built from the object', () => {
  const base: AadInput = {
    objectType: 'connector',
    objectId: 'con_1',
    tenantId: 'ten_1',
    attribute: 'clientSecret',
    aadAttributes: { provider: 'github', ownerId: 'usr_1' },
  };
  const key = randomBytes(32);
  const plaintext = randomBytes(32);
  const sealed = seal(key, 'mk_1', plaintext, buildAad(base));

  it('opens with the same object, whatever the key order', () => {
    const reordered: AadInput = {
      aadAttributes: { ownerId: 'usr_1', provider: 'github' },
      attribute: 'clientSecret',
      tenantId: 'ten_1',
      objectId: 'con_1',
      objectType: 'connector',
    };
    assert.deepEqual(open(key, sealed, buildAad(reordered)), plaintext);
  });

  const changes: Array<[string, AadInput]> = [
    ['object type', { ...base, objectType: 'task' }],
    ['object id', { ...base, objectId: 'con_2' }],
    ['tenant', { ...base, tenantId: 'ten_2' }],
    ['attribute', { ...base, attribute: 'apiKey' }],
    ['an AAD attribute value', { ...base, aadAttributes: { provider: 'gitlab', ownerId: 'usr_1' } }],
    ['an added AAD attribute', { ...base, aadAttributes: { ...base.aadAttributes, region: 'eu' } }],
    ['a removed AAD attribute', { ...base, aadAttributes: { provider: 'github' } }],
    ['an AAD attribute set to null', { ...base, aadAttributes: { provider: 'github', ownerId: null } }],
  ];
  for (const [name, input] of changes) {
    it(`refuses a changed ${name}`, () => {
      expectCipherError(() => open(key, sealed, buildAad(input)), 'authentication_failed');
    });
  }
});
