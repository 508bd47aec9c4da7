import canonicalize from 'canonicalize';

const AAD_VERSION = 1;

/** What a ciphertext is bound to: its object, tenant and attribute, and the object's AAD attributes. */
export interface AadInput {
  objectType: string;
  objectId: string;
  tenantId: string;
  attribute: string;
  /** Every attribute the object type declares for AAD; a missing value is `undefined`. */
  aadAttributes: Record<string, unknown>;
}

function assertName(value: unknown, name: string): asserts value is string {
  if (typeof value !== 'string' || value === '') {
    throw Object.assign(new TypeError(`"${name}" must be a non-empty string.`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
}

/** Refuses what JSON cannot say (functions, symbols, bigints), which would otherwise vanish silently. */
function isJsonLike(value: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  switch (typeof value) {
    case 'undefined':
    case 'boolean':
    case 'string':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object':
      if (value === null) return true;
      if (Array.isArray(value)) return value.every((item) => isJsonLike(item, depth + 1));
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return true;
      return Object.values(value).every((item) => isJsonLike(item, depth + 1));
    default:
      return false;
  }
}

/**
 * The Additional Authenticated Data for one encrypted attribute: UTF-8 of the RFC 8785 canonical
 * JSON of `{ v, type, id, tenant, attribute, attrs }`. The same inputs give the same bytes whatever
 * their key order; an `undefined` AAD attribute counts as `null`.
 *
 * @example
 * const aad = buildAad({
 *   objectType: 'connector', objectId: 'con_1', tenantId: 'ten_1',
 *   attribute: 'clientSecret', aadAttributes: { provider: 'github' },
 * });
 */
export function buildAad(input: AadInput): Buffer {
  assertName(input.objectType, 'objectType');
  assertName(input.objectId, 'objectId');
  assertName(input.tenantId, 'tenantId');
  assertName(input.attribute, 'attribute');
  const declared: unknown = input.aadAttributes;
  if (typeof declared !== 'object' || declared === null || Array.isArray(declared)) {
    throw Object.assign(new TypeError('"aadAttributes" must be an object.'), { code: 'ERR_INVALID_ARG_TYPE' });
  }
  const attrs: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, value] of Object.entries(declared)) {
    if (!isJsonLike(value)) {
      throw Object.assign(new TypeError(`"aadAttributes.${name}" must be a JSON value.`), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
    }
    attrs[name] = value === undefined ? null : value;
  }
  let json: string | undefined;
  try {
    // The same bytes canonicalize() gives for the whole object (a test holds the two equal): the
    // fixed keys are written in their RFC 8785 order (attribute, attrs, id, tenant, type, v) with
    // JSON.stringify, which is how RFC 8785 serialises strings; only the caller's attributes need
    // the general canonicalisation. This halves the cost of every seal and open.
    const canonicalAttrs = canonicalize(attrs);
    json =
      canonicalAttrs === undefined
        ? undefined
        : `{"attribute":${JSON.stringify(input.attribute)},"attrs":${canonicalAttrs},"id":${JSON.stringify(input.objectId)},"tenant":${JSON.stringify(input.tenantId)},"type":${JSON.stringify(input.objectType)},"v":${AAD_VERSION}}`;
  } catch (error) {
    // canonicalize refuses NaN, Infinity, lone surrogates and cycles; its message names no value.
    throw Object.assign(new TypeError('"aadAttributes" must hold JSON values only.', { cause: error }), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  }
  if (json === undefined) {
    throw new TypeError('"aadAttributes" must hold JSON values only.');
  }
  return Buffer.from(json, 'utf8');
}
