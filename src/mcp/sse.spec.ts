import { formatSse, parseSse, type SseEvent } from './sse';

/** The text as a byte stream cut every `size` bytes, as a network would deliver it. */
function chunksOf(text: string, size: number): AsyncIterable<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
  return (async function* () {
    for (const chunk of chunks) yield await Promise.resolve(chunk);
  })();
}

async function collect(text: string, size = 3): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  for await (const event of parseSse(chunksOf(text, size))) events.push(event);
  return events;
}

describe('parseSse', () => {
  it('parses events split across arbitrary chunk boundaries, with ids and multi-line data', async () => {
    const text = 'id: 1\nevent: message\ndata: {"a":1}\n\n: comment\nid: 2\ndata: line one\ndata: line two\n\n';
    for (const size of [1, 2, 5, 1000]) {
      expect(await collect(text, size)).toEqual([
        { id: '1', event: 'message', data: '{"a":1}', retry: undefined },
        { id: '2', event: undefined, data: 'line one\nline two', retry: undefined },
      ]);
    }
  });

  it('accepts CRLF and CR line endings and a retry field', async () => {
    expect(await collect('retry: 5000\r\ndata: x\r\n\r\ndata: y\r\r', 2)).toEqual([
      { id: undefined, event: undefined, data: 'x', retry: 5000 },
      { id: undefined, event: undefined, data: 'y', retry: undefined },
    ]);
  });

  it('keeps an event that carries only an id (a priming event) and drops an unterminated tail', async () => {
    expect(await collect('id: prime-1\ndata:\n\ndata: never ended')).toEqual([
      { id: 'prime-1', event: undefined, data: '', retry: undefined },
    ]);
  });

  it('round-trips what formatSse writes', async () => {
    const event = { id: '7', event: 'message', data: '{"jsonrpc":"2.0","method":"x"}' };
    expect(await collect(formatSse(event))).toEqual([{ ...event, retry: undefined }]);
  });
});
