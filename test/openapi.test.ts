// The served /openapi.json as SDK generators and linters read it, from a whole assembled Latchkey on
// both databases: a unique operationId, summary, declared tags, security and a described success
// answer on every operation; an example on every request and response body, accepted by its own
// schema, with no secret in it that looks real; the server from the public URL; date-time
// timestamps; the request id and Retry-After headers; one shared error schema whose per-status
// codes follow ERROR_STATUS; and no component schema nobody refers to.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { ERROR_STATUS } from '../src/core/index.js';
import { eachDialect } from './support/databases.js';
import { createHttpHarness, type HttpHarness } from './support/http.js';
import { createSchemaValidator } from './support/openapi-conformance.js';

type Json = Record<string, unknown>;
interface Media {
  schema?: unknown;
  example?: unknown;
  examples?: Record<string, { $ref?: string; value?: unknown }>;
}
interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: unknown[];
  requestBody?: { content?: Record<string, Media> };
  responses: Record<string, Json>;
}
interface Document {
  servers?: { url: string }[];
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Json>; headers?: Record<string, Json>; examples?: Record<string, { value?: unknown }> };
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

/** Every body of an operation: its request body's media types, then each answer's. */
function bodies(op: Operation): { where: string; media: Media }[] {
  const out = Object.entries(op.requestBody?.content ?? {}).map(([type, media]) => ({ where: `request ${type}`, media }));
  for (const [status, response] of Object.entries(op.responses)) {
    for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, Media>)) out.push({ where: `${status} ${type}`, media });
  }
  return out;
}

/** Fields whose value is a credential: in an example, only a plainly fake one. */
const SECRET_FIELDS = /^(key|secret|token|password|accessToken|refreshToken|clientSecret|apiKeyValue)$/;

/** `field=value` for every secret field in `value` whose value does not say it is an example. */
function realLookingSecrets(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const item of value) realLookingSecrets(item, out);
  else if (value !== null && typeof value === 'object') {
    for (const [field, inner] of Object.entries(value)) {
      if (SECRET_FIELDS.test(field) && typeof inner === 'string' && !/example/i.test(inner)) out.push(`${field}=${inner}`);
      else realLookingSecrets(inner, out);
    }
  }
  return out;
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

  it('gives every request and response body an example its own schema accepts, with no real-looking secret', () => {
    const validate = createSchemaValidator(doc.components.schemas);
    const named = doc.components.examples ?? {};
    let checked = 0;
    for (const { path, method, op } of operations(doc)) {
      for (const { where, media } of bodies(op)) {
        const at = `${method.toUpperCase()} ${path} ${where}`;
        const examples =
          media.example !== undefined
            ? [media.example]
            : Object.values(media.examples ?? {}).map((example) => (example.$ref ? named[example.$ref.replace('#/components/examples/', '')]?.value : example.value));
        assert.ok(examples.length > 0, `${at} has an example`);
        for (const example of examples) {
          assert.notEqual(example, undefined, `${at}: every example has a value`);
          assert.equal(validate(media.schema, example), undefined, `${at}: the example matches the schema`);
          assert.deepEqual(realLookingSecrets(example), [], `${at}: secrets in examples say they are examples`);
          checked++;
        }
      }
    }
    assert.ok(checked >= 250, `${checked} examples checked`);
    // The components' own examples, which the bodies that refer to them show.
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      for (const example of (schema.examples as unknown[] | undefined) ?? []) {
        assert.equal(validate({ $ref: `#/components/schemas/${name}` }, example), undefined, `the example of ${name} matches it`);
      }
    }
    for (const name of ['User', 'ApiKey', 'Connector', 'Connection', 'WebhookEndpoint']) {
      assert.ok(Array.isArray(doc.components.schemas[name]?.examples), `${name} has an example`);
    }
    // The check sees a wrong example, not only a missing one.
    const user = (doc.components.schemas.User?.examples as Json[])[0];
    assert.match(validate({ $ref: '#/components/schemas/User' }, { ...user, createdAt: 'yesterday' }) ?? '', /date-time/);
    assert.deepEqual(realLookingSecrets({ apiKey: { key: 'lk_k7swL8XQ9N1y3zsD_3g8AREegF8CFg8Uq' } }), ['key=lk_k7swL8XQ9N1y3zsD_3g8AREegF8CFg8Uq']);
  });

  it('shows a masked key as masked and a once-shown key plainly fake', () => {
    const apiKey = (doc.components.schemas.ApiKey?.examples as Json[])[0];
    assert.match(String(apiKey?.masked), /^lk_k[0-9A-Za-z]{15}_…[0-9A-Za-z]{4}$/);
    const issued = (doc.components.schemas.IssuedApiKey?.examples as Json[])[0];
    assert.match(String(issued?.key), /^lk_k[0-9A-Za-z]{15}_[0-9A-Za-z]{49}$/);
    assert.ok(String(issued?.key).endsWith(String(apiKey?.masked).slice(-4)), 'the mask ends like the key');
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
    // No time (…At, …Until, at) anywhere, in components or inline, nullable or not, without the format.
    const untyped: string[] = [];
    const walk = (node: unknown, where: string): void => {
      if (Array.isArray(node)) node.forEach((item, i) => walk(item, `${where}/${i}`));
      if (node === null || typeof node !== 'object') return;
      const properties = (node as { properties?: unknown }).properties;
      if (properties !== null && typeof properties === 'object' && !Array.isArray(properties)) {
        for (const [name, schema] of Object.entries(properties)) {
          if (/(At|Until|^at)$/.test(name) && !JSON.stringify(schema).includes('"format":"date-time"')) untyped.push(`${where}/${name}`);
        }
      }
      for (const [key, value] of Object.entries(node)) if (key !== 'example' && key !== 'examples') walk(value, `${where}/${key}`);
    };
    walk(doc, '#');
    assert.deepEqual(untyped, []);
    assert.equal((props('Connection').backoffUntil?.anyOf as Json[] | undefined)?.[0]?.format, 'date-time');
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
        // An example of each code the status can carry, and of no other.
        const listed = ((((schemas[`Error${status}`]?.allOf as Json[])[1]?.properties as Json).error as Json).properties as Record<string, Json>).code?.enum;
        assert.deepEqual(Object.keys((json.examples ?? {}) as Json), listed, `${method} ${path} ${status} has an example per code`);
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
    assert.deepEqual(codesOf('Error503').code?.enum, ['connection_degraded', 'not_ready', 'issuer_unavailable']);
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
