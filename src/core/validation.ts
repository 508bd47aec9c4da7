import type { z } from 'zod';
import { LatchkeyError } from './errors.js';

/** Deeper input is refused before any schema sees it: validators and serializers recurse. */
export const MAX_INPUT_DEPTH = 64;

const NUL_IN_STRING = 'must not contain a NUL character';

/** One field a caller got wrong: its dotted path ('' for the whole input) and what is wrong. */
export interface FieldProblem {
  path: string;
  message: string;
}

/**
 * The first string or key of `input` that holds a NUL character (PostgreSQL cannot store one,
 * SQLite stores it silently), or the input itself when plain objects and arrays nest deeper than
 * {@link MAX_INPUT_DEPTH}. Walks without recursion, so no nesting can overflow the stack.
 *
 * @example
 * unsafeInput({ name: 'a\u0000b' }); // { path: 'name', message: 'must not contain a NUL character' }
 */
export function unsafeInput(input: unknown): FieldProblem | undefined {
  // Runs on every request (path parameters, query, body): strings are checked where they are met
  // and only containers are queued, each with its path, so a flat object allocates next to nothing.
  if (typeof input === 'string') return input.includes('\u0000') ? { path: '', message: NUL_IN_STRING } : undefined;
  if (!isPlainContainer(input)) return undefined;
  const pending: Array<{ value: Record<string, unknown>; path: readonly string[] }> = [{ value: input, path: [] }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, path } = next;
    if (path.length >= MAX_INPUT_DEPTH) return { path: '', message: `must not be nested more than ${MAX_INPUT_DEPTH} levels deep` };
    for (const key of Object.keys(value)) {
      if (key.includes('\u0000')) return { path: path.join('.'), message: 'must not have a key with a NUL character' };
      const child = value[key];
      if (typeof child === 'string') {
        if (child.includes('\u0000')) return { path: [...path, key].join('.'), message: NUL_IN_STRING };
      } else if (isPlainContainer(child)) {
        pending.push({ value: child, path: [...path, key] });
      }
    }
  }
  return undefined;
}

/**
 * Throws `validation_failed` when {@link unsafeInput} finds a problem in `input`.
 *
 * @example
 * assertSafeInput(request.query, 'query string');
 */
export function assertSafeInput(input: unknown, what: string): void {
  const problem = unsafeInput(input);
  if (problem === undefined) return;
  const sentence = problem.path ? `The ${what} is invalid: "${problem.path}" ${problem.message}.` : `The ${what} ${problem.message}.`;
  throw new LatchkeyError('validation_failed', sentence, { details: { fields: [problem] } });
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
};

/**
 * A field's problem in words: zod's own type errors ("Invalid input: expected string, received
 * undefined") become "is required" or "must be a string"; every other message is kept.
 *
 * @example
 * fieldProblem('Invalid input: expected object, received null'); // 'must be an object'
 */
export function fieldProblem(message: string): string {
  if (/received undefined$/.test(message)) return 'is required';
  const type = /^invalid input: expected (\w+), received \w+$/i.exec(message)?.[1];
  return type === undefined ? message : `must be ${TYPE_WORDS[type] ?? type}`;
}

/** `text` ended as a sentence: a final "." unless it already ends with one or a "?". */
export function sentence(text: string): string {
  return /[.?!]$/.test(text) ? text : `${text}.`;
}

/**
 * Parses `input` or throws `validation_failed` naming the first bad field, with every bad field in
 * `details.fields` (`{path, message}`). NUL characters and runaway nesting are refused first.
 *
 * @example
 * const body = parseInput(createUserInput, request.body, 'user');
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  assertSafeInput(input, what);
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: fieldProblem(issue.message) }));
  const first = fields[0];
  const where = first?.path ? `"${first.path}" ${first.message}` : (first?.message ?? 'invalid');
  throw new LatchkeyError('validation_failed', sentence(`The ${what} is invalid: ${where}`), { details: { fields } });
}

/**
 * The zod error for a string field: "is required" when it is missing, "must be a string" otherwise.
 *
 * @example
 * const tenant = z.string({ error: stringError }).min(1);
 */
export function stringError(issue: { input?: unknown }): string {
  return issue.input === undefined ? 'is required' : 'must be a string';
}

/** A caller passed something that is not an id at all: a programming error, not a lookup miss. */
export function assertId(value: unknown, argument: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new TypeError(`"${argument}" must be a non-empty string.`);
  }
}

/** Arrays and objects a parser or caller built (query strings come with a null-prototype base). */
/** Arrays and objects as parsers make them; never a stream (a proxied body is one), which is not walked. */
function isPlainContainer(value: unknown): value is Record<string, unknown> {
  if (Array.isArray(value)) return true;
  if (Object.prototype.toString.call(value) !== '[object Object]') return false;
  return typeof (value as { pipe?: unknown }).pipe !== 'function';
}
