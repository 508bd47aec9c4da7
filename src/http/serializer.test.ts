import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { responseSerializerCompiler } from './serializer.js';

type Serialize = (data: unknown) => string;

function compiled(schema: z.ZodType): Serialize {
  return responseSerializerCompiler({ schema, method: 'GET', url: '/test' }) as Serialize;
}

function zodCompiled(schema: z.ZodType): Serialize {
  return zodSerializerCompiler({ schema, method: 'GET', url: '/test' }) as Serialize;
}

const item = z.object({ id: z.string(), createdAt: z.string(), count: z.number().int() });

const shapes = {
  literal: z.object({ status: z.literal('ok') }),
  nested: z.object({
    tenant: z.object({ id: z.string(), name: z.string() }),
    apiKey: z.object({ id: z.string(), masked: z.string() }).nullable(),
    permissions: z.array(z.enum(['a:read', 'a:write'])),
    note: z.string().optional(),
  }),
  page: z.object({ items: z.array(item), nextCursor: z.string().nullable() }),
  record: z.object({ checks: z.record(z.string(), z.object({ state: z.string() })) }),
  union: z.object({
    credential: z.discriminatedUnion('authType', [
      z.object({ authType: z.literal('api_key'), apiKey: z.string() }),
      z.object({ authType: z.literal('basic'), username: z.string(), password: z.string() }),
    ]),
  }),
  free: z.object({ meta: z.record(z.string(), z.unknown()), details: z.unknown() }),
};

describe('response serializer', () => {
  it('writes what the zod serializer writes, for every shape of schema the routes use', () => {
    const secret = randomBytes(12).toString('hex');
    const samples: Array<[z.ZodType, unknown]> = [
      [shapes.literal, { status: 'ok' }],
      [shapes.nested, { tenant: { id: 'ten_1', name: 'default' }, apiKey: { id: 'k1', masked: 'lk_k1…' }, permissions: ['a:read', 'a:write'] }],
      [shapes.nested, { tenant: { id: 'ten_1', name: 'a "quoted"\nname \u2028' }, apiKey: null, permissions: [], note: 'n' }],
      [shapes.page, { items: [{ id: 'x', createdAt: '2026-12-02T00:00:00.000Z', count: 3 }], nextCursor: null }],
      [shapes.record, { checks: { database: { state: 'ok' }, 'other name': { state: 'failing' } } }],
      [shapes.union, { credential: { authType: 'api_key', apiKey: secret } }],
      [shapes.union, { credential: { authType: 'basic', username: 'u', password: secret } }],
      [shapes.free, { meta: { team: 'core', nested: { deep: [1, 2, { x: null }] } }, details: ['any', 1, true] }],
    ];
    for (const [schema, data] of samples) {
      assert.deepEqual(JSON.parse(compiled(schema)(data)), JSON.parse(zodCompiled(schema)(data)));
    }
  });

  it('never writes a field the schema does not declare, at any depth', () => {
    const secret = randomBytes(16).toString('base64url');
    const leaky = [
      [shapes.literal, { status: 'ok', clientSecret: secret }],
      [shapes.nested, { tenant: { id: 't', name: 'n', token: secret }, apiKey: { id: 'k', masked: 'm', key: secret }, permissions: [], extra: secret }],
      [shapes.page, { items: [{ id: 'x', createdAt: 'c', count: 1, hash: secret }], nextCursor: null, debug: { secret } }],
      [shapes.record, { checks: { database: { state: 'ok', password: secret } } }],
      [shapes.union, { credential: { authType: 'api_key', apiKey: 'shown', refreshToken: secret } }],
    ] as const;
    for (const [schema, data] of leaky) {
      const text = compiled(schema)(data);
      assert.ok(!text.includes(secret), `undeclared field written: ${text}`);
    }
  });

  it('refuses data that lacks a required field rather than writing a partial answer', () => {
    assert.throws(() => compiled(shapes.nested)({ tenant: { id: 't' }, apiKey: null, permissions: [] }));
    assert.throws(() => compiled(shapes.page)({ nextCursor: null }));
  });

  it('keeps the zod serializer for a schema JSON Schema cannot express', () => {
    const dated = z.object({ at: z.date() });
    const serialize = compiled(dated);
    const at = new Date();
    assert.equal(serialize({ at, extra: 1 }), zodCompiled(dated)({ at }));
    assert.throws(() => serialize({ at: 'not a date' }));
  });
});
