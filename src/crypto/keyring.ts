import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { InspectOptions, inspect as inspectFn } from 'node:util';
import { ConfigError, type Logger } from '../core/index.js';

const KEY_BYTES = 32;
const KEY_ID_CONTEXT = Buffer.from('latchkey master key id v1\0', 'latin1');
const BASE64_KEY_PATTERN = /^[A-Za-z0-9+/]{43}=$/;
const KEYGEN_HINT = 'make one with `latchkey keygen`';

/** A master key and its id. `key` is non-enumerable, so spreading or serialising a MasterKey drops it. */
export interface MasterKey {
  id: string;
  key: Buffer;
  primary: boolean;
}

function assertKey(value: unknown, name: string): asserts value is Buffer {
  if (!Buffer.isBuffer(value) || value.length !== KEY_BYTES) {
    throw Object.assign(new TypeError(`"${name}" must be a Buffer of ${KEY_BYTES} bytes.`), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  }
}

/**
 * The public id of a master key: `mk_` and 12 hex characters of a domain-separated SHA-256. Stable
 * across processes, so every ciphertext can name its key; it reveals nothing useful about the key.
 *
 * @example
 * masterKeyId(Buffer.from(generateMasterKey(), 'base64')) // 'mk_3f9a0c1d2e4b'
 */
export function masterKeyId(key: Buffer): string {
  assertKey(key, 'key');
  return `mk_${createHash('sha256').update(KEY_ID_CONTEXT).update(key).digest('hex').slice(0, 12)}`;
}

function makeMasterKey(key: Buffer, primary: boolean): MasterKey {
  const copy = Buffer.from(key);
  const masterKey = { id: masterKeyId(copy), primary } as MasterKey;
  Object.defineProperty(masterKey, 'key', { value: copy, enumerable: false });
  return Object.freeze(masterKey);
}

/**
 * The primary master key (encrypts and decrypts) and any decryption-only keys (kept while old data
 * is re-encrypted). Keys are found by the id a ciphertext names. Key bytes never appear in
 * `JSON.stringify`, `util.inspect` or `toString`.
 *
 * @example
 * const keyring = new Keyring(newKey, [oldKey]);
 * keyring.get(readKeyId(sealed))?.key;
 */
export class Keyring {
  readonly primary: MasterKey;
  readonly #keys = new Map<string, MasterKey>();

  constructor(primary: Buffer, decryptionOnly: Buffer[] = []) {
    assertKey(primary, 'primary');
    if (!Array.isArray(decryptionOnly)) {
      throw Object.assign(new TypeError('"decryptionOnly" must be an array of Buffers.'), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    this.primary = makeMasterKey(primary, true);
    this.#keys.set(this.primary.id, this.primary);
    decryptionOnly.forEach((key, index) => {
      assertKey(key, `decryptionOnly[${index}]`);
      const masterKey = makeMasterKey(key, false);
      const existing = this.#keys.get(masterKey.id);
      if (existing === undefined) {
        this.#keys.set(masterKey.id, masterKey);
      } else if (!timingSafeEqual(existing.key, masterKey.key)) {
        // 48-bit ids: a collision is all but impossible, but two keys under one id would be worse.
        throw new ConfigError(`Two different master keys share the id ${masterKey.id}; drop one of them.`);
      }
    });
  }

  /** The key with this id, or `undefined` when this keyring does not hold it. */
  get(id: string): MasterKey | undefined {
    return this.#keys.get(id);
  }

  /** Every key, the primary first. */
  list(): MasterKey[] {
    return [...this.#keys.values()];
  }

  toJSON(): { primary: string; decryptionOnly: string[] } {
    return {
      primary: this.primary.id,
      decryptionOnly: this.list()
        .filter((key) => !key.primary)
        .map((key) => key.id),
    };
  }

  toString(): string {
    return `Keyring(${this.list()
      .map((key) => key.id)
      .join(', ')})`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](_depth: number, options: InspectOptions, inspect: typeof inspectFn): string {
    return `Keyring ${inspect(this.toJSON(), options)}`;
  }
}

/**
 * A new random master key, base64 of 32 bytes.
 *
 * @example
 * console.log(generateMasterKey()); // 'q3Vx…=' — put it in LATCHKEY_ENCRYPTION_KEY or a key file
 */
export function generateMasterKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

function decodeKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  return BASE64_KEY_PATTERN.test(trimmed) ? Buffer.from(trimmed, 'base64') : undefined;
}

/**
 * Reads a key file: one base64 key per line, the first is the primary and later ones are
 * decryption-only; blank lines and lines starting with `#` are skipped. A bad line is a
 * {@link ConfigError} naming the file and line number, never the line's content.
 *
 * @example
 * const { primary, decryptionOnly } = parseKeyFile(readFileSync(path, 'utf8'), path);
 */
export function parseKeyFile(text: string, path: string): { primary: Buffer; decryptionOnly: Buffer[] } {
  const keys: Buffer[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split(/\r\n|\n|\r/)
    .forEach((raw, index) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const key = decodeKey(line);
      if (key === undefined) {
        throw new ConfigError(`The key file ${path} line ${index + 1} is not a 32-byte key encoded as base64.`);
      }
      keys.push(key);
    });
  const [primary, ...decryptionOnly] = keys;
  if (primary === undefined) {
    throw new ConfigError(`The key file ${path} holds no key; put one on its first line (${KEYGEN_HINT}).`);
  }
  return { primary, decryptionOnly };
}

export interface LoadKeyringOptions {
  /** Primary key, base64 of 32 bytes; wins over every file. */
  encryptionKey?: string;
  /** Decryption-only keys, base64 of 32 bytes each; added whatever the source of the primary. */
  decryptionKeys?: string[];
  /** A key file that must exist. */
  keyFile?: string;
  /** Where `master.key` is looked for, and created when `allowCreate` is set. */
  dataDir: string;
  allowCreate: boolean;
  logger?: Logger;
}

function errorCode(error: unknown): string | undefined {
  return error instanceof Error ? (error as NodeJS.ErrnoException).code : undefined;
}

function warnIfExposed(path: string, logger: Logger | undefined): void {
  if (process.platform === 'win32') return;
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat !== undefined && (stat.mode & 0o077) !== 0) {
    logger?.warn(
      { path },
      `The key file ${path} can be read or changed by other users; restrict it with \`chmod 600 ${path}\`.`,
    );
  }
}

function readKeyFile(path: string, logger: Logger | undefined): { primary: Buffer; decryptionOnly: Buffer[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT') {
      throw new ConfigError(
        `The key file ${path} does not exist; fix --key-file (LATCHKEY_KEY_FILE) or create it (${KEYGEN_HINT}).`,
        { cause: error },
      );
    }
    throw new ConfigError(
      `The key file ${path} could not be read (${code ?? 'unknown error'}); check that it is a file this user may read.`,
      { cause: error },
    );
  }
  warnIfExposed(path, logger);
  return parseKeyFile(text, path);
}

/**
 * Writes `text` to `path` only if nothing is there yet, mode 0600, and never leaves a partly
 * written file at `path`: the text goes to a fresh temporary file (flag `wx`) that is then
 * hard-linked into place, which fails with EEXIST when another process got there first.
 * Returns false when `path` already existed. Exported for tests; not part of the module API.
 */
export function createKeyFile(path: string, text: string): boolean {
  const temp = `${path}.${randomBytes(8).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temp, path);
      return true;
    } catch (error) {
      const code = errorCode(error);
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS') throw error;
    }
    // The file system has no hard links: create the file itself exclusively.
    let direct: number;
    try {
      direct = openSync(path, 'wx', 0o600);
    } catch (error) {
      if (errorCode(error) === 'EEXIST') return false;
      throw error;
    }
    try {
      writeSync(direct, text);
      fsyncSync(direct);
    } finally {
      closeSync(direct);
    }
    return true;
  } finally {
    try {
      unlinkSync(temp);
    } catch {
      // Already gone or not removable; the result above stands either way.
    }
  }
}

function decodeOptionKeys(options: LoadKeyringOptions): Buffer[] {
  const texts = options.decryptionKeys ?? [];
  if (!Array.isArray(texts)) {
    throw Object.assign(new TypeError('"decryptionKeys" must be an array of strings.'), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  return texts.map((text, index) => {
    const key = typeof text === 'string' ? decodeKey(text) : undefined;
    if (key === undefined) {
      throw new ConfigError(
        `Decryption key ${index + 1} of LATCHKEY_DECRYPTION_KEYS is not a 32-byte key encoded as base64.`,
      );
    }
    return key;
  });
}

/**
 * Builds the process keyring. The primary key comes from, in order: `encryptionKey`; `keyFile`
 * (which must exist); `<dataDir>/master.key` if it exists; a new `<dataDir>/master.key` when
 * `allowCreate` is set (logged once at warn level: back it up). Otherwise a {@link ConfigError}.
 * `decryptionKeys` are added to whichever source gave the primary.
 *
 * @example
 * const { keyring, source } = loadKeyring({
 *   encryptionKey: settings.encryptionKey, decryptionKeys: settings.decryptionKeys,
 *   keyFile: settings.keyFile, dataDir: settings.dataDir, allowCreate: true, logger,
 * });
 */
export function loadKeyring(options: LoadKeyringOptions): {
  keyring: Keyring;
  source: 'env' | 'key-file' | 'created';
  path?: string;
} {
  if (typeof options?.dataDir !== 'string' || options.dataDir === '') {
    throw Object.assign(new TypeError('"dataDir" must be a non-empty string.'), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  const { logger } = options;
  const extra = decodeOptionKeys(options);
  const build = (keys: { primary: Buffer; decryptionOnly: Buffer[] }): Keyring =>
    new Keyring(keys.primary, [...keys.decryptionOnly, ...extra]);

  if (options.encryptionKey !== undefined) {
    const primary = typeof options.encryptionKey === 'string' ? decodeKey(options.encryptionKey) : undefined;
    if (primary === undefined) {
      throw new ConfigError(
        `LATCHKEY_ENCRYPTION_KEY (--encryption-key) is not a 32-byte key encoded as base64; ${KEYGEN_HINT}.`,
      );
    }
    return { keyring: build({ primary, decryptionOnly: [] }), source: 'env' };
  }
  if (options.keyFile !== undefined) {
    return { keyring: build(readKeyFile(options.keyFile, logger)), source: 'key-file', path: options.keyFile };
  }

  const path = join(options.dataDir, 'master.key');
  if (statSync(path, { throwIfNoEntry: false }) !== undefined) {
    return { keyring: build(readKeyFile(path, logger)), source: 'key-file', path };
  }
  if (!options.allowCreate) {
    throw new ConfigError(
      'No encryption key is configured: set LATCHKEY_ENCRYPTION_KEY or --key-file (make a key with `latchkey keygen`).',
    );
  }

  const key = generateMasterKey();
  let created: boolean;
  try {
    mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    created = createKeyFile(
      path,
      `# Latchkey master key. Back this file up: without it every stored secret is lost.\n${key}\n`,
    );
  } catch (error) {
    throw new ConfigError(
      `Could not create the key file ${path} (${errorCode(error) ?? 'unknown error'}); check that the data directory is writable.`,
      { cause: error },
    );
  }
  if (!created) {
    // Another process created it between our check and our write: use its key, not ours.
    return { keyring: build(readKeyFile(path, logger)), source: 'key-file', path };
  }
  logger?.warn(
    { path },
    `Created a new master key at ${path}; back this file up, because without it every stored secret is lost.`,
  );
  return { keyring: build({ primary: Buffer.from(key, 'base64'), decryptionOnly: [] }), source: 'created', path };
}
