import type { z } from 'zod';
import { LatchkeyError, UnsafeModelChangeError } from '../core/index.js';

/** Attributes of an object: JSON values by name. */
export type Attributes = Record<string, unknown>;

/** One version of an object type's model. Versions are numbered 1, 2, 3... with no gaps. */
export interface ModelVersion {
  version: number;
  /** Every attribute of this version, plain and encrypted. Unknown keys are stripped on read. */
  schema: z.ZodObject;
  /** Attributes sealed with AES-256-GCM; stripped from ordinary reads. */
  attributesToEncrypt: readonly string[];
  /** Plain attributes bound into every secret's AAD: changing one in the database breaks decryption. */
  attributesToIncludeInAAD: readonly string[];
  /** Turns attributes of the previous version into this version's. Required from version 2 on. */
  up?: (previous: Attributes) => Attributes;
  /**
   * Attributes this version moves between plain and encrypted. A version that encrypts an
   * attribute the previous version kept plain (or the reverse) must say so here.
   */
  moves?: { encrypt?: readonly string[]; decrypt?: readonly string[] };
}

export interface ObjectTypeDefinition<A extends Attributes = Attributes, E extends string = string> {
  name: string;
  versions: readonly ModelVersion[];
  /**
   * Type-level only (never set): the latest version's attributes and the names of the encrypted
   * ones, so that the store's reads come back typed. Set by {@link defineObjectType}.
   */
  readonly types?: { attributes: A; encrypted: E };
}

/** The latest model version of a typed definition: its schema and encrypted names give the types. */
export interface LatestModelVersion<S extends z.ZodObject, E extends string> extends ModelVersion {
  schema: S;
  attributesToEncrypt: readonly E[];
}

/**
 * Defines an object type whose reads come back typed: the attributes of its latest version are
 * `z.infer` of that version's schema, and ordinary reads leave out the encrypted ones.
 *
 * @example
 * export const WEBHOOK_TYPE = defineObjectType({
 *   name: 'webhook',
 *   versions: [{ version: 1, schema: z.object({ url: z.string(), signingSecret: z.string() }),
 *     attributesToEncrypt: ['signingSecret'], attributesToIncludeInAAD: ['url'] }],
 * });
 * const hook = await store.get(WEBHOOK_TYPE, tenantId, id);
 * hook.attributes.url;           // string
 * hook.attributes.signingSecret; // a type error: ordinary reads carry no secret
 */
export function defineObjectType<S extends z.ZodObject, const E extends keyof z.infer<S> & string = never>(definition: {
  name: string;
  versions: readonly [...ModelVersion[], LatestModelVersion<S, E>];
}): ObjectTypeDefinition<z.infer<S>, E> {
  return { name: definition.name, versions: definition.versions };
}

/** What the store accepts as a type: a registered name, or a definition (typed when made by {@link defineObjectType}). */
export type ObjectTypeRef = string | ObjectTypeDefinition;

/** Every attribute of a type's latest version, secrets included. */
export type AttributesOf<T extends ObjectTypeRef> = T extends ObjectTypeDefinition<infer A, string> ? A : Attributes;

/** The attributes an ordinary read gives: every one but the encrypted. */
export type PlainAttributesOf<T extends ObjectTypeRef> =
  T extends ObjectTypeDefinition<infer A, infer E> ? (string extends E ? A : Omit<A, E>) : Attributes;

/** The name of a type reference. */
export function typeNameOf(type: ObjectTypeRef): string {
  return typeof type === 'string' ? type : type.name;
}

/** A registered, checked object type. */
export interface ObjectType {
  readonly name: string;
  readonly versions: readonly ModelVersion[];
  readonly latest: ModelVersion;
  version(n: number): ModelVersion | undefined;
}

function keysOf(schema: z.ZodObject): string[] {
  return Object.keys(schema.shape);
}

function refuse(type: string, version: number, message: string): never {
  throw new UnsafeModelChangeError(`Object type "${type}" version ${version}: ${message}.`);
}

/**
 * Checks one type's model versions against the rules that keep a rolling upgrade safe, so that two
 * processes knowing different versions can share one database:
 * - an attribute once in AAD never leaves it;
 * - an attribute that an older version already wrote never joins AAD;
 * - an attribute moves between plain and encrypted only in a version that declares the move;
 * - AAD attributes are plain, declared attributes exist in the schema, versions have no gaps.
 */
export function checkModelVersions(definition: ObjectTypeDefinition): void {
  const { name, versions } = definition;
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(name)) {
    throw new UnsafeModelChangeError(`Object type name "${name}" must be lower snake_case.`);
  }
  if (versions.length === 0) throw new UnsafeModelChangeError(`Object type "${name}" has no model version.`);
  versions.forEach((v, index) => {
    if (v.version !== index + 1) refuse(name, v.version, `versions must be numbered 1, 2, 3... in order`);
    const keys = new Set(keysOf(v.schema));
    const declared = [...v.attributesToEncrypt, ...v.attributesToIncludeInAAD, ...(v.moves?.encrypt ?? []), ...(v.moves?.decrypt ?? [])];
    for (const attr of declared) {
      if (!keys.has(attr)) refuse(name, v.version, `attribute "${attr}" is declared but not in the schema`);
    }
    for (const attr of v.attributesToIncludeInAAD) {
      if (v.attributesToEncrypt.includes(attr)) {
        refuse(name, v.version, `attribute "${attr}" cannot be both encrypted and in AAD`);
      }
    }
    if (index === 0) {
      if (v.moves) refuse(name, v.version, 'the first version has nothing to move');
      return;
    }
    const prev = versions[index - 1] as ModelVersion;
    if (!v.up) refuse(name, v.version, 'an "up" transform from the previous version is required');

    for (const attr of prev.attributesToIncludeInAAD) {
      if (!v.attributesToIncludeInAAD.includes(attr)) {
        refuse(name, v.version, `removes attribute "${attr}" from AAD; an attribute once in AAD never leaves it`);
      }
    }
    for (const attr of v.attributesToIncludeInAAD) {
      if (prev.attributesToIncludeInAAD.includes(attr)) continue;
      const writer = versions.slice(0, index).find((older) => keysOf(older.schema).includes(attr));
      if (writer) {
        refuse(
          name,
          v.version,
          `adds attribute "${attr}" to AAD, but version ${writer.version} already writes it; only a new attribute may join AAD`,
        );
      }
    }
    const declaredEncrypt = new Set(v.moves?.encrypt ?? []);
    const declaredDecrypt = new Set(v.moves?.decrypt ?? []);
    const prevKeys = new Set(keysOf(prev.schema));
    for (const attr of v.attributesToEncrypt) {
      const wasPlain = prevKeys.has(attr) && !prev.attributesToEncrypt.includes(attr);
      if (wasPlain && !declaredEncrypt.has(attr)) {
        refuse(name, v.version, `encrypts attribute "${attr}" that version ${prev.version} keeps plain, without declaring the move`);
      }
    }
    for (const attr of prev.attributesToEncrypt) {
      const nowPlain = keysOf(v.schema).includes(attr) && !v.attributesToEncrypt.includes(attr);
      if (nowPlain && !declaredDecrypt.has(attr)) {
        refuse(name, v.version, `decrypts attribute "${attr}" that version ${prev.version} encrypts, without declaring the move`);
      }
    }
    // A declared move must be one: from plain in the previous version to encrypted here, or back.
    for (const attr of declaredEncrypt) {
      if (!v.attributesToEncrypt.includes(attr)) refuse(name, v.version, `declares moving "${attr}" to encrypted but does not encrypt it`);
      if (!prevKeys.has(attr) || prev.attributesToEncrypt.includes(attr)) {
        refuse(name, v.version, `declares moving "${attr}" to encrypted but version ${prev.version} does not keep it plain`);
      }
    }
    for (const attr of declaredDecrypt) {
      if (v.attributesToEncrypt.includes(attr)) refuse(name, v.version, `declares moving "${attr}" to plain but still encrypts it`);
      if (!prev.attributesToEncrypt.includes(attr)) {
        refuse(name, v.version, `declares moving "${attr}" to plain but version ${prev.version} does not encrypt it`);
      }
    }
  });
}

/**
 * The object types one process knows. Registration checks the model versions and refuses an unsafe
 * change with an error naming the type, the version and the attribute.
 *
 * @example
 * const registry = new ObjectTypeRegistry();
 * registry.register({
 *   name: 'webhook',
 *   versions: [{ version: 1, schema: z.object({ url: z.string(), signingSecret: z.string() }),
 *     attributesToEncrypt: ['signingSecret'], attributesToIncludeInAAD: ['url'] }],
 * });
 */
export class ObjectTypeRegistry {
  readonly #types = new Map<string, ObjectType>();

  register(definition: ObjectTypeDefinition): ObjectType {
    checkModelVersions(definition);
    if (this.#types.has(definition.name)) {
      throw new UnsafeModelChangeError(`Object type "${definition.name}" is already registered.`);
    }
    const versions = [...definition.versions];
    const type: ObjectType = {
      name: definition.name,
      versions,
      latest: versions[versions.length - 1] as ModelVersion,
      version: (n) => versions[n - 1],
    };
    this.#types.set(type.name, type);
    return type;
  }

  get(name: string): ObjectType {
    const type = this.#types.get(name);
    if (!type) throw new LatchkeyError('unknown_object_type', `Object type "${name}" is not registered.`);
    return type;
  }

  has(name: string): boolean {
    return this.#types.has(name);
  }

  list(): ObjectType[] {
    return [...this.#types.values()];
  }
}
