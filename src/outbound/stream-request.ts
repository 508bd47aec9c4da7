import { pipeline, Readable, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import { LatchkeyError } from '../core/index.js';
import { Cancel, onAbort, type CancelSignal } from './cancel.js';
import type { OutboundLimits } from './guarded-fetch.js';

/** One request sent as it is: no redirect followed (a 3xx is the answer), bodies as Node streams. */
export interface StreamRequest {
  url: URL;
  method: string;
  /** Lower-case names; hop-by-hop headers are the caller's to leave out. */
  headers: Record<string, string>;
  /** A buffered body, or a stream sent once. */
  body?: Buffer | Readable;
  /** The caller went away: aborts the request and its answer. */
  signal?: CancelSignal;
}

export interface StreamResponse {
  status: number;
  /** undici's own object for this answer (lower-case names), the caller's to change. */
  headers: Record<string, string | string[] | undefined>;
  /** Bounded by the response limit: past it the stream fails with `response_too_large`. */
  body: Readable;
  /** Reads the rest of the answer and throws it away, so the connection can be used again. */
  discard(): Promise<void>;
}

/** A stream that fails with `error()` once more than `max` bytes went through it. */
function counted(max: number, error: () => Error): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > max) done(error());
      else done(null, chunk);
    },
  });
}

/**
 * Requests through the egress dispatcher with undici's stream API, for the proxy: the same policy
 * (checked in the dispatcher's connect step), the whole-request timeout and the size limits as
 * {@link guardedFetch}, without WHATWG streams in the way of a body passed straight through. An
 * unreachable or silent provider is `provider_unavailable` naming the host; an egress refusal
 * is the refusal itself; a caller that went away gets its own abort reason back.
 */
export function streamRequester(dispatcher: Dispatcher, timeoutMs: number, limits: OutboundLimits): (request: StreamRequest) => Promise<StreamResponse> {
  return async (request) => {
    const { url } = request;
    const host = url.host;
    const tooLargeRequest = () => new LatchkeyError('payload_too_large', `The request to ${host} is larger than ${limits.maxRequestBytes} bytes.`);
    const tooLargeResponse = () => new LatchkeyError('response_too_large', `The answer from ${host} is larger than ${limits.maxResponseBytes} bytes.`);
    let body = request.body;
    if (Buffer.isBuffer(body) && body.length > limits.maxRequestBytes) throw tooLargeRequest();
    if (body instanceof Readable) body = pipeline(body, counted(limits.maxRequestBytes, tooLargeRequest), () => {});

    // One Cancel for the whole exchange, aborted by the timeout or by the caller's signal, and
    // released (timer cleared, listener removed) once the answer's body is done with: cheaper than
    // an AbortController, and than AbortSignal.timeout and AbortSignal.any, whose timer and signals
    // outlive every request.
    const controller = new Cancel();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new LatchkeyError('provider_unavailable', `${host} did not answer within ${timeoutMs} ms.`));
    }, timeoutMs);
    timer.unref();
    const callerSignal = request.signal;
    const onCallerAbort = () => controller.abort(callerSignal?.reason);
    let stopListening: (() => void) | undefined;
    if (callerSignal?.aborted) onCallerAbort();
    else if (callerSignal !== undefined) stopListening = onAbort(callerSignal, onCallerAbort);
    const release = () => {
      clearTimeout(timer);
      stopListening?.();
    };
    let answer: Dispatcher.ResponseData;
    try {
      answer = await dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: request.method as Dispatcher.HttpMethod,
        headers: request.headers,
        body: body ?? null,
        signal: controller,
      });
    } catch (err) {
      release();
      const cause = err instanceof Error ? err.cause : undefined;
      if (err instanceof LatchkeyError) throw err;
      if (cause instanceof LatchkeyError) throw cause;
      if (callerSignal?.aborted) throw callerSignal.reason;
      if (timedOut) throw new LatchkeyError('provider_unavailable', `${host} did not answer within ${timeoutMs} ms.`);
      // Refused before anything was sent (a header value HTTP cannot carry, such as a credential
      // stored before such values were refused): not the provider's fault, and never its value.
      if ((err as { code?: unknown }).code === 'UND_ERR_INVALID_ARG') {
        throw new LatchkeyError('invalid_request', `The request to ${host} could not be sent: a header value is not valid in HTTP (check the connector's credential).`);
      }
      throw new LatchkeyError('provider_unavailable', `${host} could not be reached.`, { cause: err });
    }

    const raw = answer.body;
    // Read to its end, failed or destroyed: the timeout and the caller's signal no longer apply.
    raw.once('close', release);
    const length = Number(answer.headers['content-length'] ?? Number.NaN);
    if (length > limits.maxResponseBytes) {
      raw.on('error', () => {}); // the abort that destroying it reports is ours
      raw.destroy();
      throw tooLargeResponse();
    }
    // A declared length within the limit bounds the body already (HTTP/1.1 framing ends it there);
    // only an answer of unknown length is counted as it streams, and only once it is read.
    let bounded: Readable | undefined = Number.isFinite(length) ? raw : undefined;
    return {
      status: answer.statusCode,
      headers: answer.headers,
      get body() {
        bounded ??= pipeline(raw, counted(limits.maxResponseBytes, tooLargeResponse), () => {});
        return bounded;
      },
      discard: () => raw.dump(),
    };
  };
}
