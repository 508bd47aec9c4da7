import { API_KEY_PATTERN } from '../apikeys/index.js';

const API_KEY_ANYWHERE = new RegExp(API_KEY_PATTERN, 'g');

/**
 * Replaces anything shaped like a Latchkey API key with `[redacted]`. For text built from caller
 * input that is logged or echoed (a URL path): a key pasted into the wrong place goes no further.
 *
 * @example
 * scrubSecrets('/api/v1/api-keys/lk_k0123456789ABCDE_…'); // '/api/v1/api-keys/[redacted]'
 */
export function scrubSecrets(text: string): string {
  return text.includes('lk_') ? text.replace(API_KEY_ANYWHERE, '[redacted]') : text;
}
