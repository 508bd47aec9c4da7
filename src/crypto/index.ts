export {
  CIPHER_FORMAT_VERSION,
  CipherError,
  aesGcmEncrypt,
  aesGcmDecrypt,
  seal,
  readKeyId,
  open,
  parseSealed,
  openParsed,
} from './cipher.js';
export type { CipherErrorReason, SealedParts } from './cipher.js';
export { buildAad } from './aad.js';
export type { AadInput } from './aad.js';
export { Keyring, masterKeyId, generateMasterKey, parseKeyFile, loadKeyring } from './keyring.js';
export type { MasterKey, LoadKeyringOptions } from './keyring.js';
export { DataKeys } from './data-keys.js';
export type { DataKey, DataKeysOptions, RewrapReport } from './data-keys.js';
