import type { Dispatcher } from 'undici';
import { type Abortable, onAbort } from '../common/call-signal';
import { LOOP_HEADER } from '../upstream/gateway-via';
import { UpstreamError } from '../upstream/upstream-error';
import type { ByteConsumer, ByteStream } from './sse';

/** Bytes of an unwanted body read (to keep the connection) before the connection is given up instead. */
const DISCARD_LIMIT = 128 * 1024;
/**
 * Most of an answer read whole (JSON) the gateway keeps: an upstream answering with a body without end (a ping, a
 * list, a call) grew the gateway's memory until the process was killed, or for as long as the call's time bound.
 */
export const MAX_TEXT_BYTES = 64 * 1024 * 1024;
const TOO_LONG = `the upstream answered with more than ${MAX_TEXT_BYTES / (1024 * 1024)} MiB, more than the gateway reads`;
/** Bytes held for a reader that has not come yet before the socket is paused for it. */
const EARLY_LIMIT = 64 * 1024;

/**
 * One upstream request's answer, taken from undici's dispatcher callbacks: the status, the five headers a relay
 * reads, then the body's bytes, handed to one reader. Through undici's `request()` every answer cost an
 * `AsyncResource`, a `Readable` body with its queue of ticks, and every header parsed into an object; a bare
 * handler against a local server took 10–20 µs less per request (session 11).
 *
 * Chunks that arrive before the reader does wait here: up to EARLY_LIMIT with the socket still read, beyond it with
 * the socket held, as it is while the reader pauses. (The reader comes a few microtasks after the headers, and a
 * short answer's body arrives with them: pausing for it cost undici an unshift of the rest of the socket's data and
 * Node a tick, and undici a resume, on most relayed calls.) An aborted signal ends the request with the signal's
 * reason, before or after the headers.
 */
export class UpstreamAnswer implements Dispatcher.DispatchHandler, ByteStream {
  statusCode = 0;
  sessionId?: string;
  contentType = '';
  contentLength?: string;
  location?: string;
  /** LOOP_HEADER: the gateway that refused the request as a loop (src/upstream/gateway-via.ts). */
  loop?: string;
  /** Settles once the status and headers are in, or when the request fails before they are. */
  readonly headers: Promise<UpstreamAnswer>;
  private settleHeaders!: { resolve: (answer: UpstreamAnswer) => void; reject: (error: Error) => void };
  private abortRequest?: (error: Error) => void;
  private resumeSocket?: () => void;
  /** Asked for before undici connected the request. */
  private abortedEarly?: Error;
  private reader?: ByteConsumer;
  private readonly waiting: Buffer[] = [];
  private waitingBytes = 0;
  private paused = false;
  /** How the body ended (`{}`: completely); set once. */
  private outcome?: { error?: Error };
  private told = false;
  private readonly unlisten: () => void;

  constructor(private readonly signal: Abortable | undefined) {
    this.headers = new Promise((resolve, reject) => (this.settleHeaders = { resolve, reject }));
    // Caught here so that a request failing before anyone awaits its headers is no unhandled rejection.
    this.headers.catch(() => undefined);
    this.unlisten = signal ? onAbort(signal, () => this.destroy(reasonOf(signal))) : () => undefined;
  }

  onConnect(abort: (error?: Error) => void): void {
    this.abortRequest = abort;
    const early = this.abortedEarly ?? (this.signal?.aborted ? reasonOf(this.signal) : undefined);
    if (early) abort(early);
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void): boolean {
    // 1xx: informational, the answer is still to come.
    if (statusCode < 200) return true;
    this.statusCode = statusCode;
    let sessionIds = 0;
    for (let index = 0; index + 1 < raw.length; index += 2) {
      const name = raw[index]!;
      // Only names of the lengths looked for are decoded.
      if (name.length !== 8 && name.length !== 12 && name.length !== 14 && name.length !== 16) continue;
      const value = (): string => raw[index + 1]!.toString('latin1');
      switch (name.toString('latin1').toLowerCase()) {
        case 'content-type':
          if (this.contentType === '') this.contentType = value();
          break;
        case 'mcp-session-id':
          // Sent twice, it names no one session.
          this.sessionId = ++sessionIds === 1 ? value() : undefined;
          break;
        case 'content-length':
          this.contentLength ??= value();
          break;
        case 'location':
          this.location ??= value();
          break;
        case LOOP_HEADER:
          this.loop ??= value();
          break;
      }
    }
    this.resumeSocket = resume;
    this.settleHeaders.resolve(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.reader && !this.paused && this.waiting.length === 0) {
      this.reader.data(chunk);
      return !this.paused;
    }
    this.waiting.push(chunk);
    this.waitingBytes += chunk.length;
    return !this.reader && this.waitingBytes <= EARLY_LIMIT;
  }

  onComplete(): void {
    this.finish({});
  }

  onError(error: Error): void {
    this.settleHeaders.reject(error);
    this.finish({ error });
  }

  read(reader: ByteConsumer): void {
    if (this.reader) throw new Error('an upstream answer is read once');
    this.reader = reader;
    this.deliver();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.deliver();
  }

  /** Ends the request (the connection closes); a reader gets `error`. Nothing once the body has ended. */
  destroy(error: Error = abortedError()): void {
    if (this.outcome) return;
    if (this.abortRequest) this.abortRequest(error);
    else this.abortedEarly = error;
  }

  /** The whole body as UTF-8 text; one longer than MAX_TEXT_BYTES ends the request and fails. */
  text(): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Uint8Array[] = [];
      let length = 0;
      this.read({
        data: (chunk) => {
          length += chunk.length;
          if (length <= MAX_TEXT_BYTES) chunks.push(chunk);
          else this.destroy(new UpstreamError('protocol', TOO_LONG));
        },
        end: () => resolve(Buffer.concat(chunks).toString('utf8')),
        error: reject,
      });
    });
  }

  /** Reads the body to its end and drops it, so the connection can be used again; a long one closes it instead. */
  dump(): Promise<void> {
    return new Promise((resolve) => {
      let length = 0;
      this.read({
        data: (chunk) => {
          length += chunk.length;
          if (length > DISCARD_LIMIT) this.destroy();
        },
        end: resolve,
        error: () => resolve(),
      });
    });
  }

  private finish(outcome: { error?: Error }): void {
    if (this.outcome) return;
    this.outcome = outcome;
    this.unlisten();
    if (outcome.error) {
      this.waiting.length = 0;
      this.waitingBytes = 0;
    }
    this.deliver();
  }

  /** Hands the reader what is waiting, then the end, as far as it lets; lets the socket go on when all is handed. */
  private deliver(): void {
    const reader = this.reader;
    if (!reader || this.told) return;
    if (this.outcome?.error) {
      this.told = true;
      reader.error(this.outcome.error);
      return;
    }
    while (!this.paused && this.waiting.length > 0) {
      const chunk = this.waiting.shift()!;
      this.waitingBytes -= chunk.length;
      reader.data(chunk);
    }
    if (this.paused) return;
    if (this.outcome) {
      this.told = true;
      reader.end();
    } else {
      this.resumeSocket?.();
    }
  }
}

function reasonOf(signal: Abortable): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : abortedError();
}

/** As undici says it when a request is aborted without a reason. */
function abortedError(): Error {
  return Object.assign(new Error('Request aborted'), { name: 'AbortError', code: 'UND_ERR_ABORTED' });
}
