import { PassThrough, Readable } from 'node:stream';
import { type ByteStream, formatSse, parseSse, type SseEvent, type SseReconnect } from './sse';

/** The text as a byte stream cut every `size` bytes, as a network would deliver it. */
function chunksOf(text: string, size: number): Readable {
  const bytes = Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  // One chunk per read, as cut (object mode keeps them apart).
  return Readable.from(chunks);
}

/** The text as a `ByteStream` that ends once read, as a reconnection gives it. */
function bytes(text: string): ByteStream {
  return {
    read(reader) {
      reader.data(Buffer.from(text));
      reader.end();
    },
    pause: () => undefined,
    resume: () => undefined,
    destroy: () => undefined,
  };
}

/** A reconnection that gives `rests` in turn (then nothing), recording what it was asked. */
function reconnectWith(...rests: string[]): SseReconnect & { asked: [string, number | undefined, number][] } {
  const asked: [string, number | undefined, number][] = [];
  const reconnect: SseReconnect = (lastEventId, retryMs, fruitless) => {
    asked.push([lastEventId, retryMs, fruitless]);
    const rest = rests.shift();
    return Promise.resolve(rest === undefined ? undefined : bytes(rest));
  };
  return Object.assign(reconnect, { asked });
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

  it('splits lines on LF, CRLF and CR mixed in one stream, wherever the chunks are cut', async () => {
    const text = 'id: 1\r\ndata: a\rdata: b\n\r\n: note\rdata: c\r\rid: 3\ndata: d\r\n\n';
    for (let size = 1; size <= text.length; size++) {
      expect(await collect(text, size)).toEqual([
        { id: '1', event: undefined, data: 'a\nb', retry: undefined },
        { id: undefined, event: undefined, data: 'c', retry: undefined },
        { id: '3', event: undefined, data: 'd', retry: undefined },
      ]);
    }
  });

  it('keeps an event that carries only an id (a priming event) and drops an unterminated tail', async () => {
    expect(await collect('id: prime-1\ndata:\n\ndata: never ended')).toEqual([
      { id: 'prime-1', event: undefined, data: '', retry: undefined },
    ]);
  });

  it('keeps characters whole when a chunk cuts through them, and drops a byte-order mark that opens the stream', async () => {
    const text = '\uFEFFdata: {"text":"café ☕ 𝄞 中文"}\r\n\r\ndata: ü\r\r';
    for (const size of [1, 2, 3, 4, 7]) {
      expect(await collect(text, size)).toEqual([
        { id: undefined, event: undefined, data: '{"text":"café ☕ 𝄞 中文"}', retry: undefined },
        { id: undefined, event: undefined, data: 'ü', retry: undefined },
      ]);
    }
  });

  it('round-trips what formatSse writes', async () => {
    const event = { id: '7', event: 'message', data: '{"jsonrpc":"2.0","method":"x"}' };
    expect(await collect(formatSse(event))).toEqual([{ ...event, retry: undefined }]);
  });

  it('holds the stream while events wait to be read, and gives them all in order', async () => {
    const body = new PassThrough();
    const events = parseSse(body);
    body.write('data: 1\n\ndata: 2\n\n');
    await new Promise((resolve) => setImmediate(resolve));
    expect(body.isPaused()).toBe(true);
    body.end('data: 3\n\n');
    const data: string[] = [];
    for await (const event of events) data.push(event.data);
    expect(data).toEqual(['1', '2', '3']);
  });

  it("rejects the read waiting with the stream's own error, and a stream closed before its end as premature", async () => {
    const failing = new PassThrough();
    const read = parseSse(failing).next();
    const reason = new Error('the client closed the connection');
    failing.destroy(reason);
    await expect(read).rejects.toBe(reason);

    const cut = new PassThrough();
    const events = parseSse(cut);
    cut.write('data: first\n\n');
    expect((await events.next()).value).toMatchObject({ data: 'first' });
    const next = events.next();
    cut.destroy();
    await expect(next).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
  });

  it('destroys the stream when the reader leaves before its end, and ends quietly when it leaves after', async () => {
    const open = new PassThrough();
    const events = parseSse(open);
    open.write('data: only\n\n');
    for await (const event of events) {
      expect(event.data).toBe('only');
      break;
    }
    expect(open.destroyed).toBe(true);

    const done = Readable.from([Buffer.from('data: a\n\n')]);
    const all = parseSse(done);
    expect((await all.next()).value).toMatchObject({ data: 'a' });
    expect(await all.next()).toEqual({ value: undefined, done: true });
    expect(await all.return!()).toEqual({ value: undefined, done: true });
  });

  describe('resumption', () => {
    it('goes on over new connections from the last event id, after the retry asked for, until nothing more comes', async () => {
      const reconnect = reconnectWith('id: b1\ndata: two\n\n', 'data: three\n\n');
      const events = parseSse(
        Readable.from([Buffer.from('id: a1\nretry: 25\ndata:\n\nid: a2\ndata: one\n\nid: a3\ndata: cut')]),
      );
      events.resumeWith(reconnect);
      const data: string[] = [];
      for await (const event of events) data.push(event.data);
      expect(data).toEqual(['', 'one', 'two', 'three']);
      // The event cut short by the first connection's end names no id; an event without an id keeps the last one.
      expect(reconnect.asked).toEqual([
        ['a2', 25, 0],
        ['b1', 25, 0],
        ['b1', 25, 1],
      ]);
    });

    it('resumes for a reader already waiting when the stream ends', async () => {
      const body = new PassThrough();
      const events = parseSse(body);
      const reconnect = reconnectWith('id: 2\ndata: answer\n\n');
      events.resumeWith(reconnect);
      body.write('id: 1\ndata: first\n\n');
      expect((await events.next()).value).toMatchObject({ data: 'first' });
      const waiting = events.next();
      body.end();
      expect((await waiting).value).toMatchObject({ id: '2', data: 'answer' });
      events.answered();
      expect(await events.next()).toEqual({ value: undefined, done: true });
      expect(reconnect.asked).toEqual([['1', undefined, 0]]);
    });

    it('ends as before without an event id, once answered, or when left', async () => {
      const withoutId = reconnectWith('data: never\n\n');
      const plain = parseSse(Readable.from([Buffer.from('data: one\n\n')]));
      plain.resumeWith(withoutId);
      expect((await plain.next()).value).toMatchObject({ data: 'one' });
      expect(await plain.next()).toEqual({ value: undefined, done: true });
      expect(withoutId.asked).toEqual([]);

      const afterAnswer = reconnectWith('data: never\n\n');
      const answered = parseSse(Readable.from([Buffer.from('id: 1\ndata: answer\n\n')]));
      answered.resumeWith(afterAnswer);
      expect((await answered.next()).value).toMatchObject({ data: 'answer' });
      answered.answered();
      expect(await answered.next()).toEqual({ value: undefined, done: true });
      expect(afterAnswer.asked).toEqual([]);

      const leaving = reconnectWith('data: never\n\n');
      const left = parseSse(Readable.from([Buffer.from('id: 1\ndata: one\n\n')]));
      left.resumeWith(leaving);
      for await (const _event of left) break;
      expect(await left.next()).toEqual({ value: undefined, done: true });
      expect(leaving.asked).toEqual([]);
    });

    it('tells the reconnection how many resumptions in a row brought no event with a new id', async () => {
      // Nothing; a comment; a new id; data without an id (the same id once more); nothing; then no rest at all.
      const reconnect = reconnectWith('', ': still working\n\n', 'id: b\ndata:\n\n', 'data: no id\n\n', '');
      const events = parseSse(Readable.from([Buffer.from('id: a\nretry: 0\ndata:\n\n')]));
      events.resumeWith(reconnect);
      const data: string[] = [];
      for await (const event of events) data.push(event.data);
      expect(data).toEqual(['', '', 'no id']);
      expect(reconnect.asked).toEqual([
        ['a', 0, 0],
        ['a', 0, 1],
        ['a', 0, 2],
        ['b', 0, 0],
        ['b', 0, 1],
        ['b', 0, 2],
      ]);
    });

    it('resumes a connection that broke after an event with an id, and fails one that broke before any', async () => {
      const broken = new PassThrough();
      const events = parseSse(broken);
      const reconnect = reconnectWith('id: 2\ndata: answer\n\n');
      events.resumeWith(reconnect);
      broken.write('id: 1\ndata: first\n\ndata: cut');
      expect((await events.next()).value).toMatchObject({ data: 'first' });
      const waiting = events.next();
      broken.destroy(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }));
      expect((await waiting).value).toMatchObject({ id: '2', data: 'answer' });
      expect(reconnect.asked).toEqual([['1', undefined, 0]]);

      const early = new PassThrough();
      const withoutId = parseSse(early);
      const never = reconnectWith('data: never\n\n');
      withoutId.resumeWith(never);
      early.write('data: first\n\n');
      expect((await withoutId.next()).value).toMatchObject({ data: 'first' });
      const reason = new Error('other side closed');
      early.destroy(reason);
      await expect(withoutId.next()).rejects.toBe(reason);
      expect(never.asked).toEqual([]);
    });

    it('fails the read waiting with the reason the reconnection failed', async () => {
      const events = parseSse(Readable.from([Buffer.from('id: 1\ndata: one\n\n')]));
      const reason = new Error('the upstream did not answer in time');
      events.resumeWith(() => Promise.reject(reason));
      expect((await events.next()).value).toMatchObject({ data: 'one' });
      await expect(events.next()).rejects.toBe(reason);

      // Broken, then refused a reconnection (the call is over): the refusal is the stream's end, not one more break.
      const broken = new PassThrough();
      const refused = parseSse(broken);
      let asked = 0;
      refused.resumeWith(() => {
        asked++;
        return Promise.reject(reason);
      });
      broken.write('id: 1\ndata: one\n\n');
      expect((await refused.next()).value).toMatchObject({ data: 'one' });
      const waiting = refused.next();
      broken.destroy(new Error('other side closed'));
      await expect(waiting).rejects.toBe(reason);
      expect(asked).toBe(1);
    });
  });
});
