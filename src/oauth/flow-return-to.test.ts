import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LatchkeyError } from '../core/index.js';
import { checkReturnTo } from './flow-return-to.js';

const PUBLIC = 'https://latchkey.example.com';
const ALLOWED = ['https://app.example.com', 'http://localhost:3000'];

describe('checkReturnTo', () => {
  it('accepts allowed origins and paths on the public URL, normalised', () => {
    assert.equal(checkReturnTo('https://app.example.com/settings?tab=1', PUBLIC, ALLOWED), 'https://app.example.com/settings?tab=1');
    assert.equal(checkReturnTo('http://localhost:3000/', PUBLIC, ALLOWED), 'http://localhost:3000/');
    assert.equal(checkReturnTo('/connected', PUBLIC, ALLOWED), 'https://latchkey.example.com/connected');
    assert.equal(checkReturnTo('https://APP.example.com:443/x', PUBLIC, ALLOWED), 'https://app.example.com/x');
  });

  for (const bad of [
    'https://evil.example/',
    '//evil.example/path',
    '/\\evil.example/path',
    '\\\\evil.example',
    'https://app.example.com@evil.example/',
    'https://app.example.com.evil.example/',
    'http://app.example.com/',
    'https://app.example.com:8443/',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'https://user:pw@app.example.com/',
    ' https://evil.example/',
    'https://evil.example/\n',
    '',
    'x'.repeat(3000),
  ]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 60))}`, () => {
      assert.throws(
        () => checkReturnTo(bad, PUBLIC, ALLOWED),
        (err: unknown) => err instanceof LatchkeyError && err.code === 'validation_failed' && err.status === 400,
      );
    });
  }

  it('refuses a value that is not a string', () => {
    assert.throws(() => checkReturnTo(42, PUBLIC, ALLOWED), (err: unknown) => err instanceof LatchkeyError && err.code === 'validation_failed');
  });
});
