import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** The first byte of every sealed value. A reader refuses any other version. */
export const CIPHER_FORMAT_VERSION = 1;

const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export type CipherErrorReason = 'malformed' | 'unsupported_version' | 'authentication_failed';

/**
 * A sealed value could not be read or did not authenticate. The message is one sentence and never
 * holds plaintext, key bytes or ciphertext.
 *
 * @example
 * try { open(key, sealed, aad) } catch (error) {
 *   if (error instanceof CipherError && error.reason === 'authentication_failed') { ... }
 * }
 */
export class CipherError extends Error {
  readonly reason: CipherErrorReason;

  constructor(reason: CipherErrorReason, message: string) {
    super(message);
    this.name = 'CipherError';
    this.reason = reason;
  }
}

function invalidArgument(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG_VALUE' });
}

function assertBytes(value: unknown, name: string, length?: number): asserts value is Buffer {
  if (!Buffer.isBuffer(value)) {
    throw invalidArgument(`"${name}" must be a Buffer.`);
  }
  if (length !== undefined && value.length !== length) {
    throw invalidArgument(`"${name}" must be ${length} bytes long.`);
  }
}

/**
 * AES-256-GCM encryption with a caller-chosen nonce and a 128-bit tag. Prefer {@link seal}, which
 * picks a fresh random nonce; this exists for known-answer tests and for formats built on top.
 *
 * @example
 * const { ciphertext, tag } = aesGcmEncrypt(key, randomBytes(12), Buffer.from('hi'), Buffer.alloc(0));
 */
export function aesGcmEncrypt(
  key: Buffer,
  nonce: Buffer,
  plaintext: Buffer,
  aad: Buffer,
): { ciphertext: Buffer; tag: Buffer } {
  assertBytes(key, 'key', KEY_BYTES);
  assertBytes(nonce, 'nonce', NONCE_BYTES);
  assertBytes(plaintext, 'plaintext');
  assertBytes(aad, 'aad');
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

/**
 * AES-256-GCM decryption; only a full 128-bit tag is accepted. Throws {@link CipherError}
 * `authentication_failed` when the key, nonce, aad, ciphertext or tag do not match.
 *
 * @example
 * const plaintext = aesGcmDecrypt(key, nonce, ciphertext, tag, Buffer.alloc(0));
 */
export function aesGcmDecrypt(key: Buffer, nonce: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  assertBytes(key, 'key', KEY_BYTES);
  assertBytes(nonce, 'nonce', NONCE_BYTES);
  assertBytes(ciphertext, 'ciphertext');
  assertBytes(tag, 'tag', TAG_BYTES);
  assertBytes(aad, 'aad');
  const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAuthTag(tag);
  decipher.setAAD(aad);
  const plaintext = decipher.update(ciphertext);
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw new CipherError(
      'authentication_failed',
      'The sealed value did not authenticate: wrong key, wrong context or altered data.',
    );
  }
  return plaintext;
}

/** A sealed value whose layout has been checked; see {@link parseSealed}. */
export interface SealedParts {
  header: Buffer;
  keyId: string;
  nonce: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

function assertKeyId(keyId: unknown): asserts keyId is string {
  if (typeof keyId !== 'string' || !KEY_ID_PATTERN.test(keyId)) {
    throw invalidArgument('"keyId" must be 1 to 64 characters of A-Z, a-z, 0-9, "_" or "-".');
  }
}

function malformed(what: string): CipherError {
  return new CipherError('malformed', `The sealed value is malformed: ${what}.`);
}

function decodeBase64(sealed: unknown): Buffer {
  if (typeof sealed !== 'string' || sealed.length === 0) {
    throw malformed('it is empty');
  }
  const bytes = Buffer.from(sealed, 'base64');
  // Node's decoder skips characters outside the alphabet and accepts the URL-safe one and missing
  // padding; encoding back and comparing refuses all of those, and stray bits in the last
  // character, in one cheap pass (a regex over the whole value costs more than the decryption).
  if (bytes.toString('base64') !== sealed) {
    throw malformed('it is not canonical base64');
  }
  return bytes;
}

/** Splits a sealed value into its parts, checking the layout strictly. */
function parse(sealed: unknown): SealedParts {
  const bytes = decodeBase64(sealed);
  const version = bytes[0];
  if (version !== CIPHER_FORMAT_VERSION) {
    throw new CipherError(
      'unsupported_version',
      `The sealed value has format version ${String(version)}, which this version of Latchkey cannot read.`,
    );
  }
  const keyIdLength = bytes[1];
  if (keyIdLength === undefined) {
    throw malformed('it is truncated');
  }
  if (keyIdLength < 1 || keyIdLength > 64) {
    throw malformed('the key id length is out of range');
  }
  const headerLength = 2 + keyIdLength;
  if (bytes.length < headerLength + NONCE_BYTES + TAG_BYTES) {
    throw malformed('it is truncated');
  }
  const keyId = bytes.toString('latin1', 2, headerLength);
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw malformed('the key id has characters outside A-Z, a-z, 0-9, "_" and "-"');
  }
  const nonceEnd = headerLength + NONCE_BYTES;
  const tagEnd = nonceEnd + TAG_BYTES;
  return {
    header: bytes.subarray(0, headerLength),
    keyId,
    nonce: bytes.subarray(headerLength, nonceEnd),
    tag: bytes.subarray(nonceEnd, tagEnd),
    ciphertext: bytes.subarray(tagEnd),
  };
}

/**
 * Encrypts `plaintext` under `key` with a fresh random nonce and returns base64 of
 * `[version][keyId length][keyId][nonce 12][tag 16][ciphertext]`. The header (version and key id)
 * is authenticated together with `aad`, so neither can be changed without detection.
 *
 * @example
 * const sealed = seal(keyring.primary.key, keyring.primary.id, Buffer.from(secret), aad);
 */
export function seal(key: Buffer, keyId: string, plaintext: Buffer, aad: Buffer): string {
  assertBytes(key, 'key', KEY_BYTES);
  assertKeyId(keyId);
  assertBytes(plaintext, 'plaintext');
  assertBytes(aad, 'aad');
  const header = Buffer.concat([Buffer.of(CIPHER_FORMAT_VERSION, keyId.length), Buffer.from(keyId, 'latin1')]);
  const nonce = randomBytes(NONCE_BYTES);
  const { ciphertext, tag } = aesGcmEncrypt(key, nonce, plaintext, Buffer.concat([header, aad]));
  return Buffer.concat([header, nonce, tag, ciphertext]).toString('base64');
}

/**
 * The id of the key a sealed value was made with, read from its header without decrypting.
 * Look that key up and call {@link open}; keys are never tried one after another.
 *
 * @example
 * const key = keyring.get(readKeyId(sealed));
 */
export function readKeyId(sealed: string): string {
  return parse(sealed).keyId;
}

/**
 * Checks a sealed value's layout once and returns its parts: the key id to look up, then
 * {@link openParsed} with that key (so a store that routes by key id parses each value once).
 *
 * @example
 * const parts = parseSealed(sealed);
 * const plaintext = openParsed(dataKeys.get(parts.keyId).key, parts, aad);
 */
export function parseSealed(sealed: string): SealedParts {
  return parse(sealed);
}

/** Decrypts parts from {@link parseSealed}; the same checks and errors as {@link open}. */
export function openParsed(key: Buffer, parts: SealedParts, aad: Buffer): Buffer {
  assertBytes(key, 'key', KEY_BYTES);
  assertBytes(aad, 'aad');
  return aesGcmDecrypt(key, parts.nonce, parts.ciphertext, parts.tag, Buffer.concat([parts.header, aad]));
}

/**
 * Checks and decrypts a value made by {@link seal} with the same key and `aad`. Throws
 * {@link CipherError}: `malformed` or `unsupported_version` for a bad layout,
 * `authentication_failed` for a wrong key, a different `aad` or altered bytes.
 *
 * @example
 * const plaintext = open(keyring.get(readKeyId(sealed))!.key, sealed, aad);
 */
export function open(key: Buffer, sealed: string, aad: Buffer): Buffer {
  assertBytes(key, 'key', KEY_BYTES);
  assertBytes(aad, 'aad');
  const parts = parse(sealed);
  return aesGcmDecrypt(key, parts.nonce, parts.ciphertext, parts.tag, Buffer.concat([parts.header, aad]));
}
