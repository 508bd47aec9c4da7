import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecryptionError, LatchkeyError } from '../core/index.js';
import { INTERNAL_ERROR_MESSAGE, mapError, notFoundBody } from './errors.js';
import { runReadinessChecks } from './readiness.js';

describe('mapError', () => {
  it('passes a 4xx LatchkeyError through with its details', () => {
    const error = new LatchkeyError('rate_limited', 'Too many requests; retry in 3 seconds.', {
      details: { retryAfterSeconds: 3 },
      cause: new Error('bucket internals'),
    });
    assert.deepEqual(mapError(error, 'req_1'), {
      status: 429,
      internal: false,
      body: {
        error: {
          code: 'rate_limited',
          message: 'Too many requests; retry in 3 seconds.',
          requestId: 'req_1',
          details: { retryAfterSeconds: 3 },
        },
      },
    });
  });

  it('hides a 5xx LatchkeyError behind the generic internal error', () => {
    const mapped = mapError(new DecryptionError('connector', 'con_1', 'authentication tag mismatch'), 'req_2');
    assert.equal(mapped.status, 500);
    assert.equal(mapped.internal, true);
    assert.deepEqual(mapped.body, { error: { code: 'internal_error', message: INTERNAL_ERROR_MESSAGE, requestId: 'req_2' } });
  });

  it('keeps not_ready as a public 503', () => {
    const mapped = mapError(new LatchkeyError('not_ready', 'Latchkey is not ready: database.'), 'req_3');
    assert.equal(mapped.status, 503);
    assert.equal(mapped.body.error.code, 'not_ready');
  });

  for (const thrown of [new Error('boom'), 'a string', null, undefined, 42, { statusCode: 500, message: 'db down' }]) {
    it(`maps ${JSON.stringify(thrown) ?? String(thrown)} to internal_error`, () => {
      const mapped = mapError(thrown, 'req_4');
      assert.equal(mapped.status, 500);
      assert.equal(mapped.internal, true);
      assert.equal(mapped.body.error.code, 'internal_error');
    });
  }

  it('answers an unknown 4xx error with its status and a fixed sentence, not its message', () => {
    const error = Object.assign(new Error('quota for tenant t_1 key lk_abc exceeded'), { statusCode: 429, code: 'X_LIMIT' });
    const mapped = mapError(error, 'req_5');
    assert.equal(mapped.status, 429);
    assert.equal(mapped.body.error.code, 'invalid_request');
    assert.equal(mapped.body.error.message, 'The request was rejected: Too Many Requests.');
  });

  it('describes a validation error on the query string and a nested path', () => {
    const error = Object.assign(new Error('querystring/limit ...'), {
      code: 'FST_ERR_VALIDATION',
      statusCode: 400,
      validationContext: 'querystring',
      validation: [{ instancePath: '/filter/0/limit', message: 'Too big: expected number to be <=100' }],
    });
    const mapped = mapError(error, 'req_6');
    assert.equal(mapped.status, 400);
    assert.equal(mapped.body.error.code, 'validation_failed');
    assert.equal(
      mapped.body.error.message,
      'The query string is invalid: "filter.0.limit" is invalid (too big: expected number to be <=100).',
    );
    assert.deepEqual(mapped.body.error.details, {
      fields: [{ path: 'filter.0.limit', message: 'Too big: expected number to be <=100' }],
    });
  });

  it('describes a missing body', () => {
    const error = Object.assign(new Error('body'), {
      code: 'FST_ERR_VALIDATION',
      statusCode: 400,
      validationContext: 'body',
      validation: [{ instancePath: '/', message: 'Invalid input: expected object, received undefined' }],
    });
    assert.equal(mapError(error, 'req_7').body.error.message, 'The request body is invalid: it is required.');
  });

  it("words zod's type errors and a path parameter's problem as one sentence", () => {
    const validation = (validationContext: string, instancePath: string, message: string) =>
      mapError(Object.assign(new Error('x'), { code: 'FST_ERR_VALIDATION', statusCode: 400, validationContext, validation: [{ instancePath, message }] }), 'req_9').body.error;
    assert.equal(validation('body', '', 'invalid input: expected object, received null').message, 'The request body is invalid: must be an object.');
    assert.equal(validation('params', '/id', 'is not a connector id').message, 'The request path is invalid: "id" is not a connector id.');
    const typo = validation('body', '/provider', 'is not a provider in the catalog; did you mean github?');
    assert.equal(typo.message, 'The request body is invalid: "provider" is not a provider in the catalog; did you mean github?');
    assert.deepEqual(validation('body', '/name', 'Invalid input: expected string, received number').details, { fields: [{ path: 'name', message: 'must be a string' }] });
  });

  it('leaves the query string out of the 404 message', () => {
    assert.equal(notFoundBody('GET', '/x/y?token=abc', 'req_8').error.message, 'No route matches GET /x/y.');
  });
});

describe('runReadinessChecks', () => {
  it('fails a check that does not answer within the timeout', async () => {
    const results = await runReadinessChecks(
      [
        { name: 'slow', check: () => new Promise<void>(() => undefined) },
        { name: 'sync-throw', check: () => { throw new Error('not a promise'); } },
        { name: 'fine', check: async () => undefined },
      ],
      50,
    );
    assert.deepEqual(results.map((result) => [result.name, result.error !== undefined]), [
      ['slow', true],
      ['sync-throw', true],
      ['fine', false],
    ]);
  });
});
