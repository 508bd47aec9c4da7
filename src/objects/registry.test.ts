import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { LatchkeyError, UnsafeModelChangeError } from '../core/index.js';
import { checkModelVersions, ObjectTypeRegistry, type ModelVersion, type ObjectTypeDefinition } from './index.js';

const keep = (previous: Record<string, unknown>) => previous;

function version(n: number, shape: Record<string, z.ZodType>, options: Partial<ModelVersion> = {}): ModelVersion {
  return {
    version: n,
    schema: z.object(shape),
    attributesToEncrypt: [],
    attributesToIncludeInAAD: [],
    ...(n > 1 ? { up: keep } : {}),
    ...options,
  };
}

/** Asserts registration is refused as an unsafe model change naming the type, version and attribute. */
function assertRefused(definition: ObjectTypeDefinition, expected: { version?: number; attribute?: string; says?: RegExp }) {
  assert.throws(
    () => new ObjectTypeRegistry().register(definition),
    (err: unknown) => {
      assert.ok(err instanceof UnsafeModelChangeError, `expected UnsafeModelChangeError, got ${String(err)}`);
      assert.equal(err.code, 'unsafe_model_change');
      assert.ok(err.message.includes(`"${definition.name}"`), `the message names the type: ${err.message}`);
      if (expected.version !== undefined) {
        assert.ok(err.message.includes(`version ${expected.version}:`), `the message names version ${expected.version}: ${err.message}`);
      }
      if (expected.attribute !== undefined) {
        assert.ok(err.message.includes(`"${expected.attribute}"`), `the message names "${expected.attribute}": ${err.message}`);
      }
      if (expected.says) assert.match(err.message, expected.says);
      return true;
    },
  );
  // The same verdict from the checker itself, without a registry.
  assert.throws(() => checkModelVersions(definition), UnsafeModelChangeError);
}

function assertAccepted(definition: ObjectTypeDefinition) {
  const registry = new ObjectTypeRegistry();
  const type = registry.register(definition);
  assert.equal(type.name, definition.name);
  assert.equal(type.latest.version, definition.versions.length);
  assert.equal(registry.get(definition.name), type);
}

describe('object type registry: refused model changes', () => {
  it('refuses removing an attribute from AAD', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { provider: z.string(), region: z.string() }, { attributesToIncludeInAAD: ['provider', 'region'] }),
          version(2, { provider: z.string(), region: z.string() }, { attributesToIncludeInAAD: ['provider'] }),
        ],
      },
      { version: 2, attribute: 'region', says: /removes attribute "region" from AAD/ },
    );
  });

  it('refuses removing an AAD attribute by dropping it from the schema', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { provider: z.string(), region: z.string() }, { attributesToIncludeInAAD: ['region'] }),
          version(2, { provider: z.string() }),
        ],
      },
      { version: 2, attribute: 'region', says: /removes attribute "region" from AAD/ },
    );
  });

  it('refuses adding to AAD an attribute the previous version already wrote', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { provider: z.string(), owner: z.string() }, { attributesToIncludeInAAD: ['provider'] }),
          version(2, { provider: z.string(), owner: z.string() }, { attributesToIncludeInAAD: ['provider', 'owner'] }),
        ],
      },
      { version: 2, attribute: 'owner', says: /version 1 already writes it/ },
    );
  });

  it('refuses adding to AAD in version 3 an attribute only version 1 wrote', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { provider: z.string(), owner: z.string() }),
          version(2, { provider: z.string() }),
          version(3, { provider: z.string(), owner: z.string() }, { attributesToIncludeInAAD: ['owner'] }),
        ],
      },
      { version: 3, attribute: 'owner', says: /version 1 already writes it/ },
    );
  });

  it('refuses encrypting a plain attribute without declaring the move', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { clientId: z.string() }),
          version(2, { clientId: z.string() }, { attributesToEncrypt: ['clientId'] }),
        ],
      },
      { version: 2, attribute: 'clientId', says: /encrypts attribute "clientId" that version 1 keeps plain/ },
    );
  });

  it('refuses decrypting an encrypted attribute without declaring the move', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { note: z.string() }, { attributesToEncrypt: ['note'] }),
          version(2, { note: z.string() }),
        ],
      },
      { version: 2, attribute: 'note', says: /decrypts attribute "note" that version 1 encrypts/ },
    );
  });

  it('refuses declaring a move to encrypted that does not encrypt the attribute', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { clientId: z.string() }),
          version(2, { clientId: z.string() }, { moves: { encrypt: ['clientId'] } }),
        ],
      },
      { version: 2, attribute: 'clientId', says: /declares moving "clientId" to encrypted/ },
    );
  });

  it('refuses declaring a move to plain that still encrypts the attribute', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { note: z.string() }, { attributesToEncrypt: ['note'] }),
          version(2, { note: z.string() }, { attributesToEncrypt: ['note'], moves: { decrypt: ['note'] } }),
        ],
      },
      { version: 2, attribute: 'note', says: /declares moving "note" to plain/ },
    );
  });

  it('refuses declaring a move to encrypted for an attribute the previous version already encrypts', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { token: z.string() }, { attributesToEncrypt: ['token'] }),
          version(2, { token: z.string() }, { attributesToEncrypt: ['token'], moves: { encrypt: ['token'] } }),
        ],
      },
      { version: 2, attribute: 'token', says: /declares moving "token" to encrypted/ },
    );
  });

  it('refuses declaring a move to plain for an attribute the previous version keeps plain', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { note: z.string() }),
          version(2, { note: z.string() }, { moves: { decrypt: ['note'] } }),
        ],
      },
      { version: 2, attribute: 'note', says: /declares moving "note" to plain/ },
    );
  });

  it('refuses declaring a move of an attribute the previous version does not have', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { name: z.string() }),
          version(2, { name: z.string(), token: z.string() }, { attributesToEncrypt: ['token'], moves: { encrypt: ['token'] } }),
        ],
      },
      { version: 2, attribute: 'token', says: /declares moving "token" to encrypted/ },
    );
  });

  it('refuses declaring a move to plain of an attribute this version drops', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { name: z.string(), note: z.string() }, { attributesToEncrypt: ['note'] }),
          version(2, { name: z.string() }, { moves: { decrypt: ['note'] } }),
        ],
      },
      { version: 2, attribute: 'note', says: /is declared but not in the schema/ },
    );
  });

  it('refuses moves in the first version', () => {
    assertRefused(
      { name: 'connector', versions: [version(1, { token: z.string() }, { attributesToEncrypt: ['token'], moves: { encrypt: ['token'] } })] },
      { version: 1, says: /the first version has nothing to move/ },
    );
  });

  it('refuses an attribute that is both encrypted and in AAD', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [version(1, { token: z.string() }, { attributesToEncrypt: ['token'], attributesToIncludeInAAD: ['token'] })],
      },
      { version: 1, attribute: 'token', says: /cannot be both encrypted and in AAD/ },
    );
  });

  it('refuses an encrypted attribute that is not in the schema', () => {
    assertRefused(
      { name: 'connector', versions: [version(1, { name: z.string() }, { attributesToEncrypt: ['token'] })] },
      { version: 1, attribute: 'token', says: /is declared but not in the schema/ },
    );
  });

  it('refuses an AAD attribute that is not in the schema', () => {
    assertRefused(
      {
        name: 'connector',
        versions: [
          version(1, { name: z.string() }),
          version(2, { name: z.string() }, { attributesToIncludeInAAD: ['region'] }),
        ],
      },
      { version: 2, attribute: 'region', says: /is declared but not in the schema/ },
    );
  });

  it('refuses versions with a gap', () => {
    assertRefused(
      { name: 'connector', versions: [version(1, { name: z.string() }), version(3, { name: z.string() })] },
      { version: 3, says: /numbered 1, 2, 3\.\.\. in order/ },
    );
  });

  it('refuses versions out of order', () => {
    assertRefused(
      { name: 'connector', versions: [version(2, { name: z.string() }), version(1, { name: z.string() })] },
      { version: 2, says: /numbered 1, 2, 3\.\.\. in order/ },
    );
  });

  it('refuses a first version numbered other than 1', () => {
    assertRefused({ name: 'connector', versions: [version(0, { name: z.string() })] }, { version: 0, says: /numbered 1, 2, 3/ });
  });

  it('refuses a type with no version', () => {
    assertRefused({ name: 'connector', versions: [] }, { says: /has no model version/ });
  });

  it('refuses a version 2 or later without an "up" transform', () => {
    const v2 = version(2, { name: z.string() });
    delete v2.up;
    assertRefused({ name: 'connector', versions: [version(1, { name: z.string() }), v2] }, { version: 2, says: /"up" transform/ });
  });

  it('refuses registering the same type twice, keeping the first', () => {
    const registry = new ObjectTypeRegistry();
    const first = registry.register({ name: 'connector', versions: [version(1, { name: z.string() })] });
    assert.throws(
      () => registry.register({ name: 'connector', versions: [version(1, { other: z.string() })] }),
      (err: unknown) => {
        assert.ok(err instanceof UnsafeModelChangeError);
        assert.equal(err.code, 'unsafe_model_change');
        assert.match(err.message, /"connector" is already registered/);
        return true;
      },
    );
    assert.equal(registry.get('connector'), first);
    assert.deepEqual(registry.list().map((t) => t.name), ['connector']);
  });

  for (const name of ['Connector', 'api-key', '1connector', '', 'a'.repeat(64), 'has space', 'conn.ector']) {
    it(`refuses the type name ${JSON.stringify(name)}`, () => {
      assert.throws(
        () => new ObjectTypeRegistry().register({ name, versions: [version(1, { name: z.string() })] }),
        (err: unknown) => {
          assert.ok(err instanceof UnsafeModelChangeError);
          assert.equal(err.code, 'unsafe_model_change');
          assert.ok(err.message.includes(`"${name}"`), err.message);
          assert.match(err.message, /lower snake_case/);
          return true;
        },
      );
    });
  }

  it('answers unknown_object_type for a type it does not know', () => {
    const registry = new ObjectTypeRegistry();
    assert.equal(registry.has('connector'), false);
    assert.throws(
      () => registry.get('connector'),
      (err: unknown) => err instanceof LatchkeyError && err.code === 'unknown_object_type' && /"connector"/.test(err.message),
    );
  });
});

describe('object type registry: accepted model changes', () => {
  it('accepts adding a brand-new attribute to AAD', () => {
    assertAccepted({
      name: 'connector',
      versions: [
        version(1, { provider: z.string() }, { attributesToIncludeInAAD: ['provider'] }),
        version(2, { provider: z.string(), tier: z.string() }, {
          attributesToIncludeInAAD: ['provider', 'tier'],
          up: (previous) => ({ ...previous, tier: 'free' }),
        }),
      ],
    });
  });

  it('accepts a declared move to encrypted and a declared move to plain', () => {
    assertAccepted({
      name: 'connector',
      versions: [
        version(1, { clientId: z.string(), note: z.string() }, { attributesToEncrypt: ['note'] }),
        version(2, { clientId: z.string(), note: z.string() }, {
          attributesToEncrypt: ['clientId'],
          moves: { encrypt: ['clientId'], decrypt: ['note'] },
        }),
      ],
    });
  });

  it('accepts adding a new encrypted attribute', () => {
    assertAccepted({
      name: 'connector',
      versions: [
        version(1, { name: z.string(), token: z.string() }, { attributesToEncrypt: ['token'] }),
        version(2, { name: z.string(), token: z.string(), webhookSecret: z.string().optional() }, {
          attributesToEncrypt: ['token', 'webhookSecret'],
        }),
      ],
    });
  });

  it('accepts the type names it documents', () => {
    for (const name of ['connector', 'api_key', 'a', `a${'b'.repeat(62)}`, 'oauth2_state']) {
      assertAccepted({ name, versions: [version(1, { name: z.string() })] });
    }
  });
});
