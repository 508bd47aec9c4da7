// The edge input check every request goes through (path parameters, query string, body): NUL
// characters anywhere (values and keys) and runaway nesting, found without recursion.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { MAX_INPUT_DEPTH, unsafeInput } from './validation.js';

/** `levels` plain containers, alternately objects and arrays, around `leaf`. */
function nested(levels: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < levels; i++) value = i % 2 === 0 ? { inner: value } : [value];
  return value;
}

describe('unsafeInput', () => {
  it('passes ordinary input, strings, numbers, null and streams', () => {
    const text = randomBytes(32).toString('base64url');
    for (const input of [undefined, null, 42, true, text, {}, [], { id: text, page: '2' }, [text, 1, null, { deep: [text] }], Readable.from([text])]) {
      assert.equal(unsafeInput(input), undefined, `${JSON.stringify(input)} passes`);
    }
  });

  it('names the path of a NUL character in a value, in a key, and in a string given alone', () => {
    assert.deepEqual(unsafeInput('a\u0000b'), { path: '', message: 'must not contain a NUL character' });
    assert.deepEqual(unsafeInput({ name: 'a\u0000b' }), { path: 'name', message: 'must not contain a NUL character' });
    assert.deepEqual(unsafeInput({ list: ['ok', { label: 'x\u0000' }] }), { path: 'list.1.label', message: 'must not contain a NUL character' });
    assert.deepEqual(unsafeInput({ meta: { 'k\u0000': 'v' } }), { path: 'meta', message: 'must not have a key with a NUL character' });
    assert.deepEqual(unsafeInput({ '\u0000': 1 }), { path: '', message: 'must not have a key with a NUL character' });
  });

  it(`refuses nesting deeper than ${MAX_INPUT_DEPTH} levels, however deep, without overflowing the stack`, () => {
    assert.equal(unsafeInput(nested(MAX_INPUT_DEPTH, 'leaf')), undefined);
    assert.deepEqual(unsafeInput(nested(MAX_INPUT_DEPTH + 1, 'leaf')), { path: '', message: `must not be nested more than ${MAX_INPUT_DEPTH} levels deep` });
    assert.equal(unsafeInput(nested(200_000, 'leaf'))?.message, `must not be nested more than ${MAX_INPUT_DEPTH} levels deep`);
    // Strings do not count as a level: a NUL in the deepest allowed container is still found.
    assert.equal(unsafeInput(nested(MAX_INPUT_DEPTH, 'a\u0000'))?.message, 'must not contain a NUL character');
  });
});
