/** Server-Sent Events: parsing what upstreams stream, and writing what clients read. */

export interface SseEvent {
  /** The event's `id:` field, passed through so clients can resume with Last-Event-ID. */
  id?: string;
  event?: string;
  data: string;
  retry?: number;
}

/**
 * Parses an SSE byte stream into events (WHATWG rules: fields per line, blank
 * line ends an event, `data:` lines joined with newlines, comments ignored).
 */
export async function* parseSse(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const parser = new SseLineParser();
  let buffer = '';
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = indexOfLineEnd(buffer)) >= 0) {
      const event = parser.line(buffer.slice(0, newline));
      buffer = buffer.slice(buffer[newline] === '\r' && buffer[newline + 1] === '\n' ? newline + 2 : newline + 1);
      if (event) yield event;
    }
  }
  // A CR held back in case an LF followed ends the last line after all.
  if (buffer === '\r') {
    const event = parser.line('');
    if (event) yield event;
  }
}

/** The field-by-field state of the event being read. */
class SseLineParser {
  private id?: string;
  private event?: string;
  private data: string[] = [];
  private retry?: number;

  /** Takes one line; returns the event a blank line completes. */
  line(line: string): SseEvent | undefined {
    if (line === '') {
      const complete =
        this.data.length > 0 || this.id !== undefined
          ? { id: this.id, event: this.event, data: this.data.join('\n'), retry: this.retry }
          : undefined;
      this.id = undefined;
      this.event = undefined;
      this.data = [];
      this.retry = undefined;
      return complete;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    else if (field === 'event') this.event = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
    return undefined;
  }
}

function indexOfLineEnd(text: string): number {
  const cr = text.indexOf('\r');
  const lf = text.indexOf('\n');
  if (cr < 0) return lf;
  if (lf < 0) return cr === text.length - 1 ? -1 : cr; // a lone trailing CR may be half of CRLF
  return Math.min(cr, lf);
}

/** One event in wire form. Data is JSON on one line, so a single `data:` field suffices. */
export function formatSse(event: SseEvent): string {
  let text = '';
  if (event.id !== undefined) text += `id: ${event.id}\n`;
  if (event.event !== undefined) text += `event: ${event.event}\n`;
  if (event.retry !== undefined) text += `retry: ${event.retry}\n`;
  for (const line of event.data.split('\n')) text += `data: ${line}\n`;
  return `${text}\n`;
}
