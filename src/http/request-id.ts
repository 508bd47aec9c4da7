import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';

const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9_.-]{1,64}$/;

// A request id names a request in logs and error bodies; it grants nothing, so it need not be
// unpredictable, only unique: 64 random bits per process, then a counter.
const PROCESS_PART = `req_${randomBytes(8).toString('hex')}`;
let sequence = 0;

/**
 * Fastify `genReqId`: the caller's `x-request-id` when it is short and plain (so it can be logged
 * and echoed safely), otherwise a new `req_` id: this process's random prefix and a sequence
 * number, unique across processes without drawing randomness for every request.
 *
 * @example
 * Fastify({ genReqId: requestIdFor, requestIdHeader: false });
 */
export function requestIdFor(request: IncomingMessage): string {
  const header = request.headers[REQUEST_ID_HEADER];
  if (typeof header === 'string' && ACCEPTED_REQUEST_ID.test(header)) return header;
  sequence += 1;
  return `${PROCESS_PART}_${sequence.toString(36)}`;
}
