/** Server-Sent Events: parsing what upstreams stream, and writing what clients read. */

import { Readable } from 'node:stream';
import { UpstreamError } from '../upstream/upstream-error';

export interface SseEvent {
  /** The event's `id:` field, passed through so clients can resume with Last-Event-ID. */
  id?: string;
  event?: string;
  data: string;
  retry?: number;
}

/** What reads a body: its chunks in order, then its end or its failure (one of the two). */
export interface ByteConsumer {
  data(chunk: Uint8Array): void;
  end(): void;
  error(error: Error): void;
}

/** A body read once, by one reader, which may hold it back (`pause`) and let go of it (`destroy`). */
export interface ByteStream {
  read(reader: ByteConsumer): void;
  pause(): void;
  resume(): void;
  destroy(error?: Error): void;
}

/**
 * Opens the rest of a stream the upstream closed early, from the event after `lastEventId`, once `retryMs` (the
 * stream's `retry` field, if it sent one) has passed; undefined when there is no rest to be had. `fruitless` counts
 * the resumptions just before, in a row, that brought no event with a new id (0 for the first); the reconnection
 * may refuse to go on (it rejects, and the stream fails with its reason), as it must once its call is over.
 */
export type SseReconnect = (
  lastEventId: string,
  retryMs: number | undefined,
  fruitless: number,
) => Promise<ByteStream | undefined>;

/** Parsed events of one logical stream, which may go on over new connections (see `resumeWith`). */
export interface SseEventStream extends AsyncIterableIterator<SseEvent> {
  [Symbol.asyncIterator](): SseEventStream;
  /**
   * Should the stream end, once every event read, after an event with an id, it is not over yet: `reconnect` opens
   * the rest, whose events follow as if the stream had never been cut (the 2025-11-25 transport's "SSE polling", where
   * a server closes a request's stream and the client resumes it by GET with Last-Event-ID), again each time a
   * resumed stream also ends so. A connection that breaks after such an event (a reset, closed mid-chunk) is resumed
   * the same way, as the transport lets a client resume a broken stream; one that breaks before any fails the stream.
   * Until `answered()`.
   */
  resumeWith(reconnect: SseReconnect): void;
  /** What the reader waited for has come: the stream ends with its connection. */
  answered(): void;
  /** The id of the last event read that named one: where whoever received the events would resume from. */
  readonly lastEventId: string | undefined;
}

/**
 * Parses an SSE byte stream into events (WHATWG rules: fields per line, blank
 * line ends an event, `data:` lines joined with newlines, comments ignored),
 * handed out as they arrive. Leaving early (`break`, `return()`) destroys the
 * stream; an error of the stream rejects the read waiting for it with that error.
 */
export function parseSse(body: ByteStream | Readable): SseEventStream {
  return new SseEvents(body instanceof Readable ? bytesOf(body) : body);
}

/** A Node stream as a `ByteStream`: closed before its end, it fails as Node's own stream iterator says it. */
function bytesOf(body: Readable): ByteStream {
  return {
    read(reader) {
      let over = false;
      body.on('data', (chunk: Uint8Array) => reader.data(chunk));
      body.once('end', () => {
        over = true;
        reader.end();
      });
      body.once('error', (error: unknown) => {
        over = true;
        reader.error(error instanceof Error ? error : new Error(String(error)));
      });
      body.once('close', () => {
        if (!over) reader.error(prematureClose());
      });
    },
    pause: () => body.pause(),
    resume: () => body.resume(),
    destroy: (error) => body.destroy(error),
  };
}

/**
 * Reads the body's chunks as they come: through Readable's async iterator and an async generator over it, a
 * relayed call's one-event answer cost a chain of promises and closures per chunk (about a tenth of an upstream's
 * CPU per call in `npm run bench`'s harness, session 9).
 */
class SseEvents implements SseEventStream, ByteConsumer {
  private readonly lines = new SseLines();
  private readonly ready: SseEvent[] = [];
  private readonly waiting: { resolve: (result: IteratorResult<SseEvent>) => void; reject: (error: Error) => void }[] =
    [];
  private ended = false;
  private paused = false;
  private failure?: { error: Error };
  private reconnect?: SseReconnect;
  /** Read from a connection of its own, not the one the stream began on. */
  private resumed = false;
  /** The event id the last resumption asked to resume after, and how many resumptions in a row stayed there. */
  private resumedFrom?: string;
  private fruitless = 0;

  constructor(private body: ByteStream) {
    body.read(this);
  }

  [Symbol.asyncIterator](): SseEventStream {
    return this;
  }

  resumeWith(reconnect: SseReconnect): void {
    this.reconnect = reconnect;
  }

  get lastEventId(): string | undefined {
    return this.lines.lastEventId;
  }

  answered(): void {
    this.reconnect = undefined;
    // A resumed stream may stay open once it has replayed the answer (the SDK's server keeps it until the session
    // ends): it is left rather than read to an end that may not come.
    if (this.resumed) void this.return();
  }

  next(): Promise<IteratorResult<SseEvent>> {
    const event = this.ready.shift();
    if (event) {
      if (this.ready.length === 0 && this.paused) {
        this.paused = false;
        this.body.resume();
      }
      return Promise.resolve({ value: event, done: false });
    }
    if (this.failure) return Promise.reject(this.failure.error);
    if (this.ended) {
      if (!this.resumable()) return Promise.resolve({ value: undefined, done: true });
      const read = new Promise<IteratorResult<SseEvent>>((resolve, reject) => this.waiting.push({ resolve, reject }));
      this.resume();
      return read;
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<SseEvent>> {
    const unfinished = !this.ended && !this.failure;
    this.ended = true;
    this.reconnect = undefined;
    this.ready.length = 0;
    this.settle();
    if (unfinished) this.body.destroy();
    return Promise.resolve({ value: undefined, done: true });
  }

  data(chunk: Uint8Array): void {
    if (this.failure) return;
    this.lines.push(chunk, this.ready);
    if (this.lines.pendingBytes > MAX_EVENT_BYTES) {
      const error = new UpstreamError('protocol', EVENT_TOO_LONG);
      this.fail(error);
      this.body.destroy(error);
      return;
    }
    while (this.ready.length > 0 && this.waiting.length > 0) {
      this.waiting.shift()!.resolve({ value: this.ready.shift()!, done: false });
    }
    // Nobody is reading: hold the stream until somebody does.
    if (this.ready.length > 0 && !this.paused) {
      this.paused = true;
      this.body.pause();
    }
  }

  end(): void {
    this.ended = true;
    // A reader waiting has read every event: whether the stream goes on is decided now, else at its next read.
    if (this.waiting.length > 0 && this.resumable()) this.resume();
    else this.settle();
  }

  error(error: Error): void {
    // Once ended (or left), what befalls the stream is nobody's concern.
    if (this.ended) return;
    // Broken after an event with an id (a reset, a connection closed mid-chunk): resumed as if it had ended. Should
    // the break be the call's own end (its time bound, a cancellation), the reconnection fails at once with its reason.
    if (this.resumable()) this.end();
    else this.fail(error);
  }

  private fail(error: Error): void {
    this.failure ??= { error };
    this.settle();
  }

  /** The stream ended early, a reconnection is offered, and there is an event id to resume after. */
  private resumable(): boolean {
    return this.reconnect !== undefined && !this.failure && this.lines.lastEventId !== undefined;
  }

  /**
   * Reads the rest of the stream from a new connection, the reads waiting meanwhile as for more of this one; a
   * failure to reconnect (a timeout, a cancelled call, an upstream given up on) fails them, no rest ends the stream
   * as it ended.
   */
  private resume(): void {
    const reconnect = this.reconnect!;
    const from = this.lines.lastEventId!;
    // The connection just ended was a resumption too, and brought no event with a new id: one more in a row.
    this.fruitless = this.resumedFrom === from ? this.fruitless + 1 : 0;
    this.resumedFrom = from;
    this.ended = false;
    reconnect(from, this.lines.retryMs, this.fruitless).then(
      (body) => {
        if (body && this.reconnect !== undefined) {
          this.body = body;
          this.resumed = true;
          this.paused = false;
          this.lines.restart();
          body.read(this);
          return;
        }
        // No rest, or the reader left meanwhile and the rest has nobody to go to.
        body?.destroy();
        this.reconnect = undefined;
        this.end();
      },
      (error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))),
    );
  }

  /** Answers the reads still waiting, once nothing more will come. */
  private settle(): void {
    for (const { resolve, reject } of this.waiting.splice(0)) {
      if (this.failure) reject(this.failure.error);
      else resolve({ value: undefined, done: true });
    }
  }
}

/** As Node's own stream iterator says it. */
function prematureClose(): Error {
  return Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * Most one event may hold: an upstream sending an event (or a line) without end grew the gateway's memory, for as
 * long as the stream lasted (a watcher's, for good), and joined the line's pieces again at every chunk.
 */
export const MAX_EVENT_BYTES = 64 * 1024 * 1024;
const EVENT_TOO_LONG = `the upstream sent an event of more than ${MAX_EVENT_BYTES / (1024 * 1024)} MiB, more than the gateway reads`;
const LF = 0x0a;
const CR = 0x0d;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * Splits bytes into lines and lines into events. Lines are cut on the bytes (CR and LF never occur inside a
 * multi-byte UTF-8 character) and decoded whole, so nothing is decoded twice and no TextDecoder is needed: a
 * streaming one is a native object per reply, whose handle every young collection then had to process.
 */
class SseLines {
  private readonly parser = new SseLineParser();
  /** The start of a line that has not ended yet, in the pieces it came in (joined once, when the line ends). */
  private pieces?: Buffer[];
  private pieceBytes = 0;
  /** The stream's first bytes, while they may be the start of a byte-order mark. */
  private opening?: Buffer;
  /** The last line ended with CR: an LF right after it belongs to that line end. */
  private afterCr = false;
  private started = false;

  /** The id of the last event that named one, for Last-Event-ID (none once an event sets an empty one). */
  get lastEventId(): string | undefined {
    return this.parser.lastId || undefined;
  }

  /** The reconnection time the stream asked for (`retry`), if it did. */
  get retryMs(): number | undefined {
    return this.parser.retryMs;
  }

  /** Bytes of the event being read: its `data` so far and the line not ended yet. */
  get pendingBytes(): number {
    return this.pieceBytes + this.parser.dataLength;
  }

  /** A new connection of the same stream: its bytes start afresh; an event cut short by the old one is dropped. */
  restart(): void {
    this.pieces = undefined;
    this.pieceBytes = 0;
    this.opening = undefined;
    this.afterCr = false;
    this.started = false;
    this.parser.drop();
  }

  push(chunk: Uint8Array, events: SseEvent[]): void {
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (!this.started) {
      bytes = this.opening ? Buffer.concat([this.opening, bytes]) : bytes;
      this.opening = undefined;
      if (bytes.length < BOM.length && BOM.subarray(0, bytes.length).equals(bytes)) {
        // Maybe the start of a byte-order mark: kept, copied as a line's start is below.
        this.opening = Buffer.from(bytes);
        return;
      }
      this.started = true;
      // A byte-order mark opening the stream is not part of the first line (as TextDecoder drops it).
      if (bytes.subarray(0, BOM.length).equals(BOM)) bytes = bytes.subarray(BOM.length);
    }
    let from = 0;
    if (this.afterCr && bytes.length > 0) {
      this.afterCr = false;
      if (bytes[0] === LF) from = 1;
    }
    for (let at = from; at < bytes.length; at++) {
      const byte = bytes[at];
      if (byte !== LF && byte !== CR) continue;
      let line: string;
      // Most lines come whole in one chunk: no pieces (not even an empty list of them) on each reply.
      if (this.pieces === undefined) line = bytes.toString('utf8', from, at);
      else {
        this.pieces.push(bytes.subarray(from, at));
        line = Buffer.concat(this.pieces).toString('utf8');
        this.pieces = undefined;
        this.pieceBytes = 0;
      }
      const event = this.parser.line(line);
      if (event) events.push(event);
      if (byte === CR) {
        if (at + 1 < bytes.length) {
          if (bytes[at + 1] === LF) at++;
        } else this.afterCr = true;
      }
      from = at + 1;
    }
    if (from < bytes.length) {
      // Copied: the chunk's memory may be reused once this returns.
      const rest = Buffer.from(bytes.subarray(from));
      (this.pieces ??= []).push(rest);
      this.pieceBytes += rest.length;
    }
  }
}

/** The field-by-field state of the event being read. */
class SseLineParser {
  /** Kept from event to event, as EventSource keeps its last event ID and reconnection time. */
  lastId?: string;
  retryMs?: number;
  private id?: string;
  private event?: string;
  private data: string[] = [];
  /** The characters of `data`, which bound an event's size. */
  dataLength = 0;
  private retry?: number;

  /** Takes one line; returns the event a blank line completes. */
  line(line: string): SseEvent | undefined {
    if (line === '') {
      if (this.id !== undefined) this.lastId = this.id;
      const complete =
        this.data.length > 0 || this.id !== undefined
          ? { id: this.id, event: this.event, data: this.data.join('\n'), retry: this.retry }
          : undefined;
      this.drop();
      return complete;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.data.push(value);
      this.dataLength += value.length;
    } else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'event') this.event = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = this.retryMs = Number(value);
    return undefined;
  }

  /** Forgets the event being read (complete, or cut short by the end of its connection). */
  drop(): void {
    this.id = undefined;
    this.event = undefined;
    this.data = [];
    this.dataLength = 0;
    this.retry = undefined;
  }
}

/** One event in wire form. Data is JSON on one line, so a single `data:` field suffices. */
export function formatSse(event: SseEvent): string {
  let text = '';
  if (event.id !== undefined) text += `id: ${event.id}\n`;
  if (event.event !== undefined) text += `event: ${event.event}\n`;
  if (event.retry !== undefined) text += `retry: ${event.retry}\n`;
  // Most data is one line (a JSON-RPC message): no split for it.
  if (!event.data.includes('\n')) return `${text}data: ${event.data}\n\n`;
  for (const line of event.data.split('\n')) text += `data: ${line}\n`;
  return `${text}\n`;
}
