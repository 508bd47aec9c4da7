import type { z } from 'zod';
import { LatchkeyError } from './errors.js';

/**
 * Parses `input` or throws `validation_failed` naming the first bad field, with every bad field in
 * `details.fields` (`{path, message}`).
 *
 * @example
 * const body = parseInput(createUserInput, request.body, 'user');
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const fields = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: issue.message }));
  const first = fields[0];
  const where = first?.path ? `"${first.path}" ${first.message}` : (first?.message ?? 'invalid');
  throw new LatchkeyError('validation_failed', `The ${what} is invalid: ${where}.`, { details: { fields } });
}

/** A caller passed something that is not an id at all: a programming error, not a lookup miss. */
export function assertId(value: unknown, argument: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new TypeError(`"${argument}" must be a non-empty string.`);
  }
}
