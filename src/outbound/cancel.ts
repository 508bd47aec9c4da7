import { EventEmitter } from 'node:events';

/**
 * What stops one outbound exchange early: the caller going away, the whole-request timeout. An
 * EventEmitter with an AbortSignal's `aborted` and `reason`, which undici takes as a request's
 * `signal` (its documented `AbortSignal | EventEmitter`). The proxy makes two for every call, and
 * an AbortController with its EventTarget listeners cost about a tenth of a proxied call's CPU
 * (bench:proxy); this costs a small fraction of that.
 *
 * @example
 * const cancel = new Cancel();
 * reply.raw.once('close', () => cancel.abort(new Error('caller left')));
 * await dispatcher.request({ origin, path, method: 'GET', signal: cancel });
 */
export class Cancel extends EventEmitter {
  #aborted = false;
  #reason: unknown = undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Aborts once: later calls change nothing. Without a reason, an `AbortError` as AbortSignal's. */
  abort(reason?: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    this.emit('abort');
  }
}

/** Either kind of signal an outbound request takes from its caller. */
export type CancelSignal = AbortSignal | Cancel;

/** Calls `listener` once when `signal` aborts; returns what removes it. */
export function onAbort(signal: CancelSignal, listener: () => void): () => void {
  if (signal instanceof Cancel) {
    signal.once('abort', listener);
    return () => signal.removeListener('abort', listener);
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}
