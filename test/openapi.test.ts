// The served /openapi.json as SDK generators and linters read it, from a whole assembled Latchkey on
// both databases: a unique operationId, summary, declared tags, security and a described success
// answer on every operation; the server from the public URL; date-time timestamps; the request id
// and Retry-After headers; one shared error schema whose per-status codes follow ERROR_STATUS; and
// no component schema nobody refers to.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { ERROR_STATUS } from '../src/core/index.js';
import { eachDialect } from './support/databases.js';
import { createHttpHarness, type HttpHarness } from './support/http.js';

type Json = Record<string, unknown>;
interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: unknown[];
  responses: Record<string, Json>;
}
interface Document {
  servers?: { url: string }[];
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; headers?: Record<string, Json> };
}

const PUBLIC_URL = 'https://latchkey.example.test';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function operations(doc: Document): { path: string; method: string; op: Operation }[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ path, method, op })),
  );
}

function refs(node: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const item of node) refs(item, out);
  else if (node !== null && typeof node === 'object') {
    for (const [key, value] of Object.entries(node)) {
      if (key === '$ref' && typeof value === 'string') out.add(value);
      else refs(value, out);
    }
  }
  return out;
}

await eachDialect('the OpenAPI description', (dialect) => {
  let h: HttpHarness;
  let doc: Document;
  before(async () => {
    h = await createHttpHarness(dialect, { LATCHKEY_PUBLIC_URL: PUBLIC_URL });
    const res = await h.call({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.status, 200, res.text);
    doc = res.json as Document;
  });
  after(async () => {
    await h?.close();
  });

  it('gives every operation a unique operationId, a summary, declared tags, security and a described success answer', () => {
    const all = operations(doc);
    assert.ok(all.length >= 70, `${all.length} operations`);
    const declared = new Set((doc.tags ?? []).map((tag) => tag.name));
    for (const tag of doc.tags ?? []) assert.ok(tag.description, `tag ${tag.name} is described`);
    const ids = new Set<string>();
    for (const { path, method, op } of all) {
      const where = `${method.toUpperCase()} ${path}`;
      assert.match(op.operationId ?? '', /^[a-z][A-Za-z]+$/, `${where} has an operationId`);
      assert.ok(!ids.has(op.operationId!), `${where}: operationId ${op.operationId} is unique`);
      ids.add(op.operationId!);
      assert.ok(op.summary, `${where} has a summary`);
      assert.ok(op.tags && op.tags.length > 0, `${where} has a tag`);
      for (const tag of op.tags) assert.ok(declared.has(tag), `${where}: tag ${tag} is declared`);
      assert.ok(Array.isArray(op.security), `${where} declares its security`);
      const success = Object.entries(op.responses).filter(([status]) => /^[23]/.test(status));
      assert.ok(success.length > 0, `${where} documents a success answer`);
      for (const [status, response] of success) {
        assert.ok(typeof response.description === 'string' && response.description !== '', `${where} ${status} is described`);
        assert.notEqual(response.description, 'Default Response', `${where} ${status} is described`);
      }
    }
    for (const id of ['createApiKey', 'listConnections', 'getHealth', 'createConnectSession', 'proxyGet', 'proxyPost']) {
      assert.ok(ids.has(id), `operationId ${id}`);
    }
  });

  it('marks the public routes with empty security and the others with both schemes', () => {
    for (const path of ['/healthz', '/readyz']) assert.deepEqual(doc.paths[path]?.get?.security, [], `${path} is public`);
    assert.deepEqual(doc.paths['/api/v1/sessions']?.post?.security, []);
    assert.deepEqual(doc.paths['/api/v1/api-keys']?.post?.security, [{ apiKey: [] }, { sessionCookie: [] }]);
  });

  it('names the public URL as its server', () => {
    assert.deepEqual(doc.servers, [{ url: PUBLIC_URL }]);
  });

  it('types timestamps as date-time in answers', () => {
    const props = (name: string) => (doc.components.schemas[name]?.properties ?? {}) as Record<string, Json>;
    assert.equal(props('User').createdAt?.format, 'date-time');
    assert.equal(props('ApiKey').lastUsedAt?.format ?? (props('ApiKey').lastUsedAt?.anyOf as Json[] | undefined)?.[0]?.format, 'date-time');
    assert.equal(props('AuditEvent').at?.format, 'date-time');
    // Nothing called …At stays a plain string anywhere.
    const text = JSON.stringify(doc.components.schemas);
    assert.doesNotMatch(text, /"[a-zA-Z]*At":\{"type":"string"\}/);
  });

  it('documents x-request-id on every answer and Retry-After on 429 and 503', () => {
    assert.ok(doc.components.headers?.RequestId && doc.components.headers?.RetryAfter);
    for (const { path, method, op } of operations(doc)) {
      for (const [status, response] of Object.entries(op.responses)) {
        const headers = (response.headers ?? {}) as Record<string, Json>;
        assert.equal(headers['x-request-id']?.$ref, '#/components/headers/RequestId', `${method} ${path} ${status}`);
        if (status === '429' || status === '503') {
          assert.equal(headers['Retry-After']?.$ref, '#/components/headers/RetryAfter', `${method} ${path} ${status}`);
        }
      }
    }
  });

  it('refers every JSON error answer to one shared error schema listing only the codes its status can carry', () => {
    const { schemas } = doc.components;
    assert.deepEqual((schemas.Error?.required as string[] | undefined) ?? [], ['error']);
    let errors = 0;
    for (const { path, method, op } of operations(doc)) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const json = (response.content as Record<string, Json> | undefined)?.['application/json'];
        if (!json) continue; // an HTML page of the OAuth callback
        errors++;
        assert.deepEqual(json.schema, { $ref: `#/components/schemas/Error${status}` }, `${method} ${path} ${status}`);
      }
    }
    assert.ok(errors >= 200, `${errors} error answers`);
    for (const [name, schema] of Object.entries(schemas)) {
      const match = /^Error(\d{3})$/.exec(name);
      if (!match) continue;
      const status = Number(match[1]);
      const allOf = schema.allOf as Json[];
      assert.deepEqual(allOf[0], { $ref: '#/components/schemas/Error' });
      const codes = (((allOf[1]?.properties as Json).error as Json).properties as Record<string, Json>).code?.enum as string[];
      assert.ok(codes.length > 0, name);
      for (const code of codes) {
        const mapped = ERROR_STATUS[code as keyof typeof ERROR_STATUS];
        assert.equal(mapped, status, `${name} lists ${code}, which answers ${mapped}`);
      }
      if (status < 500) {
        const all = Object.entries(ERROR_STATUS).filter(([, s]) => s === status).map(([code]) => code);
        assert.deepEqual([...codes].sort(), all.sort(), `${name} lists every code of ${status}`);
      }
    }
    // 5xx codes not written for callers answer as 500 internal_error, so they are never listed.
    const codesOf = (name: string) => (((schemas[name]?.allOf as Json[])[1]?.properties as Json).error as Json).properties as Record<string, Json>;
    assert.deepEqual(codesOf('Error503').code?.enum, ['connection_degraded', 'not_ready']);
    assert.deepEqual(codesOf('Error502').code?.enum, ['provider_unavailable']);
    // No copy of the error body left inline.
    const inline = JSON.stringify(doc.paths).match(/"requestId"/g) ?? [];
    assert.equal(inline.length, 0, 'the error body is written once, in components');
  });

  it('keeps no component schema that nothing refers to', () => {
    const used = new Set<string>();
    const pending = [...refs(doc.paths)];
    while (pending.length > 0) {
      const ref = pending.pop()!;
      const name = ref.replace('#/components/schemas/', '');
      if (!ref.startsWith('#/components/schemas/') || used.has(name)) continue;
      used.add(name);
      pending.push(...refs(doc.components.schemas[name]));
    }
    for (const name of Object.keys(doc.components.schemas)) assert.ok(used.has(name), `component ${name} is used`);
  });
});
