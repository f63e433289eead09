import { EventEmitter } from 'node:events';

/** What bounds an upstream request: a platform `AbortSignal`, or a `CallSignal` on the relay's per-call path. */
export type Abortable = AbortSignal | CallSignal;

/**
 * Stops one relayed call: the client went away, cancelled it, or its time ran out. The relay's stand-in for
 * `AbortController`, `AbortSignal.timeout` and `AbortSignal.any`, which undici accepts in their place (an
 * EventEmitter with `aborted` and `reason`). On Node 20 each platform signal is an EventTarget re-prototyped after
 * it is built, `timeout` registers its signal with a FinalizationRegistry behind a WeakRef and keeps its timer for
 * the whole delay, and `any` links its sources through WeakRefs. `npm run bench`, concurrency 32: with this class in
 * their place the aggregate path (two controllers, two `any` and a `timeout` per call) and the REST bridge took a
 * quarter less gateway CPU per call; on `/mcp/{slug}` (one controller) its signal had been the largest single
 * source of bytes that outlived a young collection (a fifth of them, by the sampling heap profiler).
 *
 * Whoever creates one calls `dispose()` once done with it. What still listens (undici reading the rest of a reply's
 * body, a signal that follows this one) stays bounded by the timer and the parent until it lets go; then both are
 * released, so no timer outlives its call.
 */
export class CallSignal extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
  private timer?: NodeJS.Timeout;
  private detach?: () => void;
  private disposed = false;

  /** Also aborts, with the same reason, when `parent` does; aborts after `timeoutMs` if given. */
  constructor(parent?: Abortable, timeoutMs?: number) {
    super();
    // One listener per relayed request of a batch: no warning for many.
    this.setMaxListeners(0);
    if (parent) this.follow(parent);
    if (timeoutMs && !this.aborted) this.timer = setTimeout(() => this.abort(timeoutError()), timeoutMs);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.release();
    this.emit('abort');
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.listenerCount('abort') === 0) return this.release();
    this.on('removeListener', () => {
      if (this.listenerCount('abort') === 0) this.release();
    });
  }

  private release(): void {
    clearTimeout(this.timer);
    this.detach?.();
    this.detach = undefined;
  }

  private follow(parent: Abortable): void {
    if (parent.aborted) {
      this.abort(parent.reason);
      return;
    }
    this.detach = onAbort(parent, () => this.abort(parent.reason));
  }
}

/** Calls `listener` once when `signal` aborts; returns the function that stops listening. */
export function onAbort(signal: Abortable, listener: () => void): () => void {
  if (signal instanceof CallSignal) {
    signal.once('abort', listener);
    return () => signal.off('abort', listener);
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => signal.removeEventListener('abort', listener);
}

/** Resolves after `ms`, or rejects with `signal`'s reason once it aborts, whichever comes first; no timer is left. */
export function delay(ms: number, signal?: Abortable): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    let unlisten = (): void => undefined;
    const timer = setTimeout(() => {
      unlisten();
      resolve();
    }, ms);
    if (signal) {
      unlisten = onAbort(signal, () => {
        clearTimeout(timer);
        reject(signal.reason as Error);
      });
    }
  });
}

/** The reason a call's time ran out: named as `AbortSignal.timeout` names its own, so one check tells both. */
export function timeoutError(): Error {
  const error = new Error('the upstream did not answer in time');
  error.name = 'TimeoutError';
  return error;
}
