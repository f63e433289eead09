import * as http from 'node:http';
import * as net from 'node:net';
import { request } from 'undici';
import { classifyUpstreamError } from './upstream-error';

/** A TCP server that answers whatever it is sent with `answer`, then closes the connection. */
async function answering(answer: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => socket.end(answer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What Node's own HTTP client fails with, reading the answer to its end. */
function nodeHttpError(url: string): Promise<unknown> {
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent: false }, (res) => {
      res.on('error', resolve);
      res.on('end', () => resolve(undefined));
      res.resume();
    });
    req.on('error', resolve);
    req.end('{}');
  });
}

/** What undici fails with, reading the answer to its end. */
async function undiciError(url: string): Promise<unknown> {
  try {
    const answer = await request(url, { method: 'POST', body: '{}' });
    await answer.body.text();
    return undefined;
  } catch (error) {
    return error;
  }
}

describe('classifyUpstreamError and an upstream answering malformed HTTP', () => {
  const answers: [string, string, RegExp][] = [
    ['not HTTP at all', 'this is not http\r\n\r\n', /^the upstream sent a malformed HTTP answer \(.+\)$/],
    [
      'a header name with a space',
      'HTTP/1.1 200 OK\r\nbroken header: x\r\ncontent-length: 2\r\n\r\n{}',
      /^the upstream sent a malformed HTTP answer \(.*header.*\)$/i,
    ],
    [
      'a chunk size that is not hexadecimal',
      'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      /^the upstream sent a malformed HTTP answer \(.*chunk.*\)$/i,
    ],
  ];

  it.each(answers)('classifies %s as a protocol failure through undici', async (_what, answer, message) => {
    const upstream = await answering(answer);
    try {
      const error = await undiciError(upstream.url);
      expect(classifyUpstreamError(error)).toEqual({ kind: 'protocol', message: expect.stringMatching(message) });
      expect(classifyUpstreamError(error).message).not.toContain('broken');
    } finally {
      await upstream.close();
    }
  });

  it.each(answers)('classifies %s as a protocol failure through node:http', async (_what, answer, message) => {
    const upstream = await answering(answer);
    try {
      const error = await nodeHttpError(upstream.url);
      expect((error as { code?: string }).code).toMatch(/^HPE_/);
      expect(classifyUpstreamError(error)).toEqual({ kind: 'protocol', message: expect.stringMatching(message) });
    } finally {
      await upstream.close();
    }
  });

  it('classifies headers longer than the client reads (16 KiB) as a protocol failure, through undici and node:http', async () => {
    const upstream = await answering(
      `HTTP/1.1 200 OK\r\nx-padding: ${'a'.repeat(20 * 1024)}\r\ncontent-length: 2\r\n\r\n{}`,
    );
    try {
      const viaUndici = await undiciError(upstream.url);
      expect((viaUndici as { code?: string }).code).toBe('UND_ERR_HEADERS_OVERFLOW');
      const viaNode = await nodeHttpError(upstream.url);
      expect((viaNode as { code?: string }).code).toBe('HPE_HEADER_OVERFLOW');
      for (const error of [viaUndici, viaNode]) {
        expect(classifyUpstreamError(error)).toEqual({
          kind: 'protocol',
          message: expect.stringMatching(/^the upstream sent a malformed HTTP answer \(.*header.*\)$/i),
        });
        expect(classifyUpstreamError(error).message).not.toContain('aaaa');
      }
    } finally {
      await upstream.close();
    }
  });

  it('classifies the same error wrapped by fetch ("fetch failed", the parser error as its cause)', async () => {
    const upstream = await answering('this is not http\r\n\r\n');
    try {
      const error: unknown = await fetch(upstream.url, { method: 'POST', body: '{}' }).then(
        () => undefined,
        (failure: unknown) => failure,
      );
      expect((error as Error).message).toBe('fetch failed');
      expect(classifyUpstreamError(error)).toMatchObject({ kind: 'protocol' });
    } finally {
      await upstream.close();
    }
  });
});

describe('classifyUpstreamError and what it cannot classify', () => {
  it.each([
    ['an error of the gateway itself', new Error('NOPERM User gw has no permissions to run the set command')],
    ['an error with a network code nothing names', Object.assign(new Error('socket hang up'), { code: 'ESOMETHING' })],
    ['a thrown string', 'boom'],
  ])('answers %s as other, with its message', (_what, error) => {
    expect(classifyUpstreamError(error)).toEqual({
      kind: 'other',
      message: error instanceof Error ? error.message : String(error),
    });
  });

  it('cuts a long message to 500 characters', () => {
    expect(classifyUpstreamError(new Error('x'.repeat(2_000))).message).toBe('x'.repeat(500));
  });
});
