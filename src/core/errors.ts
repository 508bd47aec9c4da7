/**
 * One error base for the whole code base: a stable snake_case `code`, a one-sentence
 * `message` that is safe to show a user, and an optional `cause` that is never serialised.
 * The HTTP layer maps `code` to a status through {@link statusForCode}.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  validation_failed: 400,
  unauthorized: 401,
  invalid_connect_session: 401,
  forbidden: 403,
  insufficient_permissions: 403,
  csrf_failed: 403,
  not_found: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  usage_exceeded: 429,
  needs_reauthorization: 409,
  not_connected: 404,
  insecure_endpoint: 409,
  egress_refused: 403,
  internal_error: 500,
  provider_unavailable: 502,
  response_too_large: 502,
  connection_degraded: 503,
  not_ready: 503,
  issuer_unavailable: 503,
  invalid_config: 500,
  decryption_failed: 500,
  key_not_found: 500,
  unsafe_model_change: 500,
  unknown_object_type: 500,
  corrupt_object: 500,
  database_error: 500,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export function statusForCode(code: ErrorCode): number {
  return ERROR_STATUS[code];
}

export interface LatchkeyErrorOptions {
  cause?: unknown;
  /** Extra fields safe to show a caller (field-level validation errors, retry hints). */
  details?: Record<string, unknown>;
}

export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: LatchkeyErrorOptions = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = options.details;
    if (options.cause !== undefined) {
      // Non-enumerable: a cause may carry driver text or secrets and must never be serialised.
      Object.defineProperty(this, 'cause', { value: options.cause, enumerable: false, writable: true });
    }
  }

  get status(): number {
    return statusForCode(this.code);
  }
}

/** A setting has a bad value. The message names the setting and what it accepts. */
export class ConfigError extends LatchkeyError {
  constructor(message: string, options: LatchkeyErrorOptions = {}) {
    super('invalid_config', message, options);
  }
}

/** A ciphertext could not be decrypted. Names the object type and id, never any plaintext. */
export class DecryptionError extends LatchkeyError {
  readonly objectType: string;
  readonly objectId: string;
  readonly attribute: string | undefined;

  constructor(
    objectType: string,
    objectId: string,
    reason: string,
    options: LatchkeyErrorOptions & { attribute?: string; code?: 'decryption_failed' | 'key_not_found' } = {},
  ) {
    const where = options.attribute ? ` (attribute "${options.attribute}")` : '';
    super(
      options.code ?? 'decryption_failed',
      `Could not decrypt ${objectType} ${objectId}${where}: ${reason}.`,
      options,
    );
    this.objectType = objectType;
    this.objectId = objectId;
    this.attribute = options.attribute;
  }
}

/** A model version change would break objects written by other versions. */
export class UnsafeModelChangeError extends LatchkeyError {
  constructor(message: string) {
    super('unsafe_model_change', message);
  }
}

export function isLatchkeyError(value: unknown): value is LatchkeyError {
  return value instanceof LatchkeyError;
}
