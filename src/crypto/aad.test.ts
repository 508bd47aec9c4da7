import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import canonicalize from 'canonicalize';
import { buildAad, type AadInput } from './aad.js';

const base: AadInput = {
  objectType: 'connector',
  objectId: 'con_1',
  tenantId: 'ten_1',
  attribute: 'clientSecret',
  aadAttributes: { provider: 'github', scopes: ['repo', 'user'], settings: { b: 2, a: 1 } },
};

describe('buildAad', () => {
  it('is the canonical JSON of { v, type, id, tenant, attribute, attrs }', () => {
    assert.equal(
      buildAad(base).toString('utf8'),
      '{"attribute":"clientSecret","attrs":{"provider":"github","scopes":["repo","user"],"settings":{"a":1,"b":2}},' +
        '"id":"con_1","tenant":"ten_1","type":"connector","v":1}',
    );
  });

  it('is stable whatever the key order of the input and its attributes', () => {
    const reordered: AadInput = {
      aadAttributes: { settings: { a: 1, b: 2 }, scopes: ['repo', 'user'], provider: 'github' },
      attribute: 'clientSecret',
      tenantId: 'ten_1',
      objectId: 'con_1',
      objectType: 'connector',
    };
    assert.deepEqual(buildAad(reordered), buildAad(base));
  });

  it('turns an undefined declared attribute into null, and keeps it apart from a missing one', () => {
    const withUndefined = buildAad({ ...base, aadAttributes: { provider: 'github', ownerId: undefined } });
    const withNull = buildAad({ ...base, aadAttributes: { provider: 'github', ownerId: null } });
    const without = buildAad({ ...base, aadAttributes: { provider: 'github' } });
    assert.deepEqual(withUndefined, withNull);
    assert.notDeepEqual(withUndefined, without);
    assert.match(withUndefined.toString('utf8'), /"ownerId":null/);
  });

  it('differs when any one field differs', () => {
    const variants: AadInput[] = [
      base,
      { ...base, objectType: 'task' },
      { ...base, objectId: 'con_2' },
      { ...base, tenantId: 'ten_2' },
      { ...base, attribute: 'accessToken' },
      { ...base, aadAttributes: { ...base.aadAttributes, provider: 'gitlab' } },
      { ...base, aadAttributes: { ...base.aadAttributes, scopes: ['user', 'repo'] } },
      { ...base, aadAttributes: { ...base.aadAttributes, region: 'eu' } },
      { ...base, aadAttributes: {} },
      // Values of the same text but another JSON type.
      { ...base, aadAttributes: { ...base.aadAttributes, provider: 1 } },
      { ...base, aadAttributes: { ...base.aadAttributes, provider: '1' } },
    ];
    const seen = new Set(variants.map((input) => buildAad(input).toString('hex')));
    assert.equal(seen.size, variants.length);
  });

  it('cannot be confused by field values that look like JSON', () => {
    const a = buildAad({ ...base, objectId: 'x","tenant":"ten_2' });
    const b = buildAad({ ...base, tenantId: 'ten_2' });
    assert.notDeepEqual(a, b);
  });

  it('encodes non-ASCII text as UTF-8', () => {
    const aad = buildAad({ ...base, aadAttributes: { name: 'Zoë 🔑' } });
    assert.match(aad.toString('utf8'), /"name":"Zoë 🔑"/);
  });

  it('refuses empty or non-string names', () => {
    for (const field of ['objectType', 'objectId', 'tenantId', 'attribute'] as const) {
      assert.throws(() => buildAad({ ...base, [field]: '' }), TypeError, field);
      assert.throws(() => buildAad({ ...base, [field]: 1 as unknown as string }), TypeError, field);
    }
  });

  it('refuses attributes that are not JSON values', () => {
    const bad: unknown[] = [() => 1, Symbol('s'), 1n, Number.NaN, Infinity, { nested: () => 1 }, ['\ud800']];
    for (const value of bad) {
      assert.throws(() => buildAad({ ...base, aadAttributes: { value } }), TypeError, String(typeof value));
    }
    assert.throws(() => buildAad({ ...base, aadAttributes: null as unknown as Record<string, unknown> }), TypeError);
    assert.throws(() => buildAad({ ...base, aadAttributes: [] as unknown as Record<string, unknown> }), TypeError);
  });
});

describe('buildAad fast path', () => {
  it('gives exactly the RFC 8785 canonical form of the whole AAD object', () => {
    const text = () => randomBytes(1 + (randomBytes(1)[0]! % 12)).toString('latin1') + '"\\\u2028\ud83d\ude00\u0007';
    for (let i = 0; i < 300; i++) {
      const input = {
        objectType: text(),
        objectId: text(),
        tenantId: text(),
        attribute: text(),
        aadAttributes: { [text()]: text(), n: i * 1.5, nested: { z: [1, 'a', null], a: true }, u: undefined },
      };
      const expected = canonicalize({
        v: 1,
        type: input.objectType,
        id: input.objectId,
        tenant: input.tenantId,
        attribute: input.attribute,
        attrs: { ...input.aadAttributes, u: null },
      });
      assert.equal(buildAad(input).toString('utf8'), expected);
    }
  });
});
