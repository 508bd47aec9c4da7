// Checks real answers against the served /openapi.json: the status is documented for the
// operation, and a JSON body matches the documented schema (JSON Schema 2020-12, as OpenAPI 3.1
// uses it, with date-time and the other formats checked).
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { Answer } from './http.js';

type Json = Record<string, unknown>;
interface Operation {
  operationId: string;
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;

/** Inlines `#/components/schemas/…` references (the document has no cycles). */
function inline(node: unknown, schemas: Json, seen: string[] = []): unknown {
  if (Array.isArray(node)) return node.map((item) => inline(item, schemas, seen));
  if (node === null || typeof node !== 'object') return node;
  const ref = (node as { $ref?: unknown }).$ref;
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
    const name = ref.slice('#/components/schemas/'.length);
    if (seen.includes(name)) throw new Error(`The component ${name} refers to itself.`);
    return inline(schemas[name], schemas, [...seen, name]);
  }
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, inline(value, schemas, seen)]));
}

/**
 * Checks values against schemas of the document (its component references inlined): the problem
 * as text, or undefined when the value matches.
 */
export type SchemaValidator = (schema: unknown, value: unknown) => string | undefined;

export function createSchemaValidator(schemas: Json): SchemaValidator {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const compiled = new Map<unknown, ValidateFunction>();
  return (schema, value) => {
    let validate = compiled.get(schema);
    if (!validate) {
      validate = ajv.compile(inline(schema, schemas) as Json);
      compiled.set(schema, validate);
    }
    return validate(value) ? undefined : ajv.errorsText(validate.errors);
  };
}

export interface Conformance {
  /** Problems with this answer (empty when it matches its documented response). */
  check(method: string, url: string, answer: Answer): string[];
  /** Every operationId checked at least once. */
  covered: Set<string>;
}

export function createConformance(doc: { paths: Record<string, Record<string, Operation>>; components: { schemas: Json } }): Conformance {
  const validate = createSchemaValidator(doc.components.schemas);
  const routes = Object.entries(doc.paths).map(([path, item]) => ({
    item,
    pattern: new RegExp(
      `^${path
        .split(/(\{[^}]+\})/)
        .map((part) => (part === '{path}' ? '(?:/.*)?' : part.startsWith('{') ? '[^/]+' : part.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
        .join('')
        .replace('/(?:/.*)?', '(?:/.*)?')}$`,
    ),
    literal: !path.includes('{'),
  }));
  // A literal path (/tenants/current) wins over a template (/tenants/{id}).
  routes.sort((a, b) => Number(b.literal) - Number(a.literal));
  const covered = new Set<string>();

  return {
    covered,
    check(method, url, answer) {
      const path = url.split('?')[0] ?? '';
      const route = routes.find((r) => r.pattern.test(path) && r.item[method.toLowerCase()]);
      if (!route) return [];
      const operation = route.item[method.toLowerCase()]!;
      covered.add(operation.operationId);
      const where = `${method} ${url} (${operation.operationId}) answered ${answer.status}`;
      const response = operation.responses[String(answer.status)];
      if (!response) return [`${where}, which it does not document`];
      const type = String(answer.headers['content-type'] ?? '').split(';')[0] ?? '';
      if (type !== 'application/json') return [];
      const schema = response.content?.['application/json']?.schema;
      if (schema === undefined) return [`${where} with JSON, but documents no JSON body`];
      const problem = validate(schema, answer.json);
      return problem === undefined ? [] : [`${where}: ${problem} in ${answer.text.slice(0, 300)}`];
    },
  };
}
