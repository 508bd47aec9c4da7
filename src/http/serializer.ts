import type { FastifySerializerCompiler } from 'fastify';
import fastJson from 'fast-json-stringify';
import { serializerCompiler as zodSerializerCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

type Serialize = (data: unknown) => string;

/**
 * Response serialization for every route: each route's zod response schema is turned into JSON
 * Schema once (zod's own `toJSONSchema`, output side) and compiled by fast-json-stringify, the
 * serializer Fastify itself uses. Like zod's parse it writes only the properties the schema
 * declares, at every depth, so a field added to an object by mistake (a secret) never reaches a
 * response; it costs a fraction of a zod pass plus `JSON.stringify`. A schema JSON Schema cannot
 * express (a transform, a custom check) keeps fastify-type-provider-zod's zod serializer.
 * Compilation happens on a route's first response, so start-up does not pay for all of them.
 *
 * @example
 * app.setSerializerCompiler(responseSerializerCompiler);
 */
export const responseSerializerCompiler: FastifySerializerCompiler<unknown> = (route) => {
  let serialize: Serialize | undefined;
  return (data) => {
    serialize ??= compile(route);
    return serialize(data);
  };
};

function compile(route: { schema: unknown; method: string; url: string }): Serialize {
  const fallback = zodSerializerCompiler(route as Parameters<typeof zodSerializerCompiler>[0]) as Serialize;
  if (!(route.schema instanceof z.ZodType)) return fallback;
  let jsonSchema: Parameters<typeof fastJson>[0] & { $schema?: string };
  try {
    jsonSchema = z.toJSONSchema(route.schema, { target: 'draft-07', io: 'output', unrepresentable: 'throw', cycles: 'ref', reused: 'inline' }) as typeof jsonSchema;
  } catch {
    return fallback;
  }
  delete jsonSchema.$schema;
  lenient(jsonSchema);
  try {
    return fastJson(jsonSchema) as Serialize;
  } catch {
    return fallback;
  }
}

/**
 * Drops `additionalProperties: false` everywhere: fast-json-stringify writes only declared
 * properties without it, and with it a nullable or union branch holding one undeclared field
 * would fail to match and turn the answer into a 500 (zod's parse strips such a field instead).
 */
function lenient(schema: unknown): void {
  if (Array.isArray(schema)) {
    for (const item of schema) lenient(item);
    return;
  }
  if (schema === null || typeof schema !== 'object') return;
  const node = schema as Record<string, unknown>;
  if (node.additionalProperties === false) delete node.additionalProperties;
  for (const value of Object.values(node)) lenient(value);
}
