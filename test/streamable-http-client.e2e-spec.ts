import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CallSignal } from '../src/common/call-signal';
import {
  DroppedBeforeAnswer,
  MAX_FRUITLESS_RESUMPTIONS,
  StreamableHttpClient,
  UnexpectedRedirect,
} from '../src/mcp/streamable-http-client';
import type { SseEvent } from '../src/mcp/sse';
import { pingUpstream } from '../src/mcp/upstream-exchange';
import { UrlGuard } from '../src/upstream/url-guard';

/**
 * The relay's upstream client against a real HTTP server on a socket: what it sends, how it reads each kind of
 * answer, and the edges fetch used to handle for it (redirects, aborts, a kept-alive connection gone stale).
 */

type Handler = (req: http.IncomingMessage, body: string, res: http.ServerResponse) => void;

interface Upstream {
  url: string;
  seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string; socket: Socket }[];
  handle: (handler: Handler) => void;
  close: () => Promise<void>;
}

/** A GET stream that sends one event and nothing more; a POST that is never answered. */
const oneEventThenSilence: Handler = (req, _body, res) => {
  if (req.method !== 'GET') return;
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write('data: {"jsonrpc":"2.0","method":"notifications/message"}\n\n');
};

async function startUpstream(): Promise<Upstream> {
  let handler: Handler = (_req, _body, res) => res.end();
  const seen: Upstream['seen'] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, socket: req.socket });
      handler(req, body, res);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    handle: (next) => (handler = next),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

describe('StreamableHttpClient against a real HTTP server', () => {
  const client = new StreamableHttpClient(new UrlGuard({ allowedHosts: ['loopback'], deniedHosts: [] }));
  let upstream: Upstream;

  beforeEach(async () => {
    upstream = await startUpstream();
  });

  afterEach(async () => {
    await upstream.close();
  });

  it('posts the message with the session headers and reads a JSON answer and the session it names', async () => {
    upstream.handle((_req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-session-2' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: 7, result: { echoed: JSON.parse(body) as unknown } }));
    });
    const message = {
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'echo', arguments: { text: 'hé' } },
    };
    const reply = await client.post(`${upstream.url}?tenant=a`, message, {
      sessionId: 'upstream-session-1',
      protocolVersion: '2025-06-18',
      headers: { authorization: 'Bearer for-the-upstream' },
    });
    expect(reply).toEqual({
      status: 200,
      sessionId: 'upstream-session-2',
      body: { kind: 'json', value: { jsonrpc: '2.0', id: 7, result: { echoed: message } } },
    });
    const [sent] = upstream.seen;
    expect(sent?.method).toBe('POST');
    expect(sent?.url).toBe('/mcp?tenant=a');
    expect(sent?.headers).toMatchObject({
      'mcp-session-id': 'upstream-session-1',
      'mcp-protocol-version': '2025-06-18',
      authorization: 'Bearer for-the-upstream',
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'content-length': String(Buffer.byteLength(sent?.body ?? '')),
    });
  });

  it('hands over SSE events as they arrive, before the stream ends', async () => {
    let finish: () => void = () => undefined;
    upstream.handle((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: message\nid: 1\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n');
      finish = () => res.end('data: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
    });
    const reply = await client.post(upstream.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: {} });
    if (reply.body.kind !== 'sse') throw new Error(`expected an SSE body, got ${reply.body.kind}`);
    const events = reply.body.events[Symbol.asyncIterator]();
    const first = await events.next();
    expect(first.value).toMatchObject({ event: 'message', id: '1' });
    finish();
    const second = await events.next();
    expect(JSON.parse((second.value as SseEvent).data)).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
    expect((await events.next()).done).toBe(true);
  });

  it('holds a long SSE answer back while its reader is slow, and hands over every event in order', async () => {
    const COUNT = 3_000;
    // About 12 MB, more than the sockets' buffers hold: the upstream writes as its socket drains.
    const padding = 'x'.repeat(4_000);
    let written = 0;
    upstream.handle((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const more = (): void => {
        while (written < COUNT) {
          const room = res.write(`id: ${written}\ndata: {"n":${written},"pad":"${padding}"}\n\n`);
          written++;
          if (!room) return void res.once('drain', more);
        }
        res.end();
      };
      more();
    });
    const reply = await client.post(upstream.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: {} });
    if (reply.body.kind !== 'sse') throw new Error(`expected an SSE body, got ${reply.body.kind}`);
    const events = reply.body.events[Symbol.asyncIterator]();
    // Nothing is read yet: the upstream stops writing, short of the end, once the buffers between are full.
    let seen = -1;
    for (let checks = 0; checks < 100 && written !== seen; checks++) {
      seen = written;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(written).toBeLessThan(COUNT);
    const ids: string[] = [];
    for (let next = await events.next(); !next.done; next = await events.next()) {
      ids.push(next.value.id ?? '');
      if (ids.length % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(ids).toEqual(Array.from({ length: COUNT }, (_, index) => String(index)));
  });

  it('reads the answer after an informational one, and a session id sent twice as none', async () => {
    upstream.handle((_req, _body, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload' });
      res.setHeader('mcp-session-id', ['one', 'two']);
      res.setHeader('content-type', 'application/json');
      res.end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    const reply = await client.post(upstream.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: {} });
    expect(reply.status).toBe(200);
    expect(reply.sessionId).toBeUndefined();
    expect(reply.body).toEqual({ kind: 'json', value: { jsonrpc: '2.0', id: 1, result: {} } });
  });

  it('reads 202 as no body, and keeps only the start of a page that is not MCP', async () => {
    upstream.handle((_req, _body, res) => {
      res.statusCode = 202;
      res.end();
    });
    expect(
      await client.post(upstream.url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { headers: {} }),
    ).toEqual({ status: 202, body: { kind: 'none' } });

    upstream.handle((_req, _body, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(`<html>${'x'.repeat(10_000)}</html>`);
    });
    const page = await client.post(upstream.url, { jsonrpc: '2.0', id: 2, method: 'ping' }, { headers: {} });
    expect(page.status).toBe(502);
    expect(page.body).toEqual({ kind: 'none' });
    expect(page.text).toHaveLength(2_000);
    expect(page.text?.startsWith('<html>xxx')).toBe(true);

    upstream.handle((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"jsonrpc": "2.0", "id": 3, "resu');
    });
    const broken = await client.post(upstream.url, { jsonrpc: '2.0', id: 3, method: 'ping' }, { headers: {} });
    expect(broken).toEqual({ status: 200, body: { kind: 'none' }, text: '{"jsonrpc": "2.0", "id": 3, "resu' });
  });

  it('refuses a redirect and never follows it', async () => {
    upstream.handle((req, _body, res) => {
      if (req.url === '/elsewhere') {
        res.end('followed');
        return;
      }
      res.writeHead(307, { location: '/elsewhere' });
      res.end();
    });
    await expect(client.post(upstream.url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: {} })).rejects.toThrow(
      UnexpectedRedirect,
    );
    await expect(client.get(upstream.url, { headers: {} })).rejects.toThrow('redirect (HTTP 307)');
    expect(upstream.seen.map((request) => request.url)).toEqual(['/mcp', '/mcp']);
  });

  it("rejects with the signal's own reason, before the headers and in the middle of the body", async () => {
    upstream.handle(oneEventThenSilence);
    const timeout = new Error('the upstream did not answer in time');
    timeout.name = 'TimeoutError';
    const early = new AbortController();
    const post = client.post(
      upstream.url,
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { headers: {}, signal: early.signal },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    early.abort(timeout);
    await expect(post).rejects.toBe(timeout);

    const late = new AbortController();
    const stream = await client.get(upstream.url, { headers: {}, signal: late.signal });
    if (stream.body.kind !== 'sse') throw new Error(`expected an SSE body, got ${stream.body.kind}`);
    const events = stream.body.events[Symbol.asyncIterator]();
    expect((await events.next()).done).toBe(false);
    const gone = new Error('the client closed the connection');
    const next = events.next();
    late.abort(gone);
    await expect(next).rejects.toBe(gone);

    // Aborted before it starts: nothing is sent.
    const before = upstream.seen.length;
    await expect(client.delete(upstream.url, { headers: {}, signal: AbortSignal.abort(timeout) })).rejects.toBe(
      timeout,
    );
    expect(upstream.seen).toHaveLength(before);
  });

  it('takes a CallSignal as undici does an AbortSignal: its reason, and its time bound after dispose while a body is read', async () => {
    upstream.handle(oneEventThenSilence);
    const parent = new CallSignal();
    const post = client.post(
      upstream.url,
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { headers: {}, signal: new CallSignal(parent) },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const gone = new Error('the client closed the connection');
    parent.abort(gone);
    await expect(post).rejects.toBe(gone);

    const bounded = new CallSignal(undefined, 300);
    const stream = await client.get(upstream.url, { headers: {}, signal: bounded });
    if (stream.body.kind !== 'sse') throw new Error(`expected an SSE body, got ${stream.body.kind}`);
    const events = stream.body.events[Symbol.asyncIterator]();
    expect((await events.next()).done).toBe(false);
    // The caller is done with it; the body undici still reads keeps it, and its timer, until it lets go.
    bounded.dispose();
    await expect(events.next()).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(bounded.listenerCount('abort')).toBe(0);
  });

  it('sends again on a new connection when the upstream dropped a kept-alive one without answering', async () => {
    // A restart, as the client sees it: a connection that served a request goes away under the next one.
    const served = new Map<Socket, number>();
    let dropped: number | undefined;
    upstream.handle((req, body, res) => {
      const count = served.get(req.socket) ?? 0;
      if (count > 0 && dropped === undefined) {
        dropped = upstream.seen.length - 1;
        res.socket?.destroy();
        return;
      }
      served.set(req.socket, count + 1);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: (JSON.parse(body) as { id: number }).id, result: {} }));
    });
    for (let id = 1; id <= 5; id++) {
      const reply = await client.post(upstream.url, { jsonrpc: '2.0', id, method: 'ping' }, { headers: {} });
      expect(reply).toEqual({ status: 200, body: { kind: 'json', value: { jsonrpc: '2.0', id, result: {} } } });
    }
    expect(dropped).toBeDefined();
    const lost = upstream.seen[dropped!];
    const again = upstream.seen[dropped! + 1];
    expect(again?.body).toBe(lost?.body);
    expect(again?.socket).not.toBe(lost?.socket);
    expect(upstream.seen).toHaveLength(6);
  });

  it('does not send a tool call again when the connection dropped after it went out, and says why', async () => {
    // The upstream read the call, and may have run it, before its connection went away: at most once.
    upstream.handle((_req, _body, res) => res.socket?.destroy());
    const call = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'send_mail', arguments: {} } };
    await expect(client.post(upstream.url, call, { headers: {} })).rejects.toThrow(DroppedBeforeAnswer);
    await expect(client.post(upstream.url, [call], { headers: {} })).rejects.toMatchObject({
      kind: 'connection_refused',
      message: expect.stringContaining('not sent again') as unknown,
    });
    expect(upstream.seen.map((request) => request.body)).toEqual([JSON.stringify(call), JSON.stringify([call])]);

    // A batch with nothing but reads goes again, and is answered.
    const reads = [
      { jsonrpc: '2.0', id: 2, method: 'tools/list' },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
    ];
    let first = true;
    upstream.handle((_req, _body, res) => {
      if (first) {
        first = false;
        res.socket?.destroy();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('[{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}]');
    });
    const reply = await client.post(upstream.url, reads, { headers: {} });
    expect(reply.body).toEqual({ kind: 'json', value: [{ jsonrpc: '2.0', id: 2, result: { tools: [] } }] });
    expect(upstream.seen.slice(2).map((request) => request.body)).toEqual([
      JSON.stringify(reads),
      JSON.stringify(reads),
    ]);
  });

  it('fails at once, without sending again, when nothing listens', async () => {
    const url = upstream.url;
    await upstream.close();
    upstream = await startUpstream();
    await expect(client.post(url, { jsonrpc: '2.0', id: 1, method: 'ping' }, { headers: {} })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
  });

  it('deletes a session and tells its status', async () => {
    upstream.handle((_req, _body, res) => {
      res.statusCode = 204;
      res.end();
    });
    expect(await client.delete(upstream.url, { sessionId: 's-1', headers: {} })).toBe(204);
    expect(upstream.seen[0]).toMatchObject({ method: 'DELETE', headers: { 'mcp-session-id': 's-1' } });
  });

  it("resumes a ping's stream closed before its answer by GET with Last-Event-ID, and gives up on a refused GET", async () => {
    upstream.handle((req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (req.method === 'POST') return void res.end('id: s-1\nretry: 5\ndata:\n\n');
      res.end(`id: s-2\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 'p-1', result: {} })}\n\n`);
    });
    const session = { sessionId: 's-1', protocolVersion: '2025-11-25' };
    const signal = AbortSignal.timeout(10_000);
    expect(await pingUpstream(client, upstream.url, session, {}, 'p-1', signal)).toEqual({
      jsonrpc: '2.0',
      id: 'p-1',
      result: {},
    });
    expect(upstream.seen.map((request) => [request.method, request.headers['last-event-id']])).toEqual([
      ['POST', undefined],
      ['GET', 's-1'],
    ]);
    expect(upstream.seen[1]?.headers).toMatchObject({ 'mcp-session-id': 's-1', accept: 'text/event-stream' });

    upstream.handle((req, _body, res) => {
      if (req.method === 'GET') return void res.writeHead(405).end();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('id: s-3\nretry: 5\ndata:\n\n');
    });
    await expect(pingUpstream(client, upstream.url, session, {}, 'p-2', signal)).rejects.toThrow(
      'the ping got no answer',
    );
    expect(upstream.seen.slice(2).map((request) => request.method)).toEqual(['POST', 'GET']);
  });

  it("gives up on a ping's stream resumed the most times in a row without a new event, under retry: 0 too", async () => {
    upstream.handle((req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (req.method === 'POST') return void res.end('id: s-1\nretry: 0\ndata:\n\n');
      res.end(': nothing yet\n\n');
    });
    const session = { sessionId: 's-1', protocolVersion: '2025-11-25' };
    await expect(pingUpstream(client, upstream.url, session, {}, 'p-1', AbortSignal.timeout(10_000))).rejects.toThrow(
      `the upstream's event stream, resumed ${MAX_FRUITLESS_RESUMPTIONS} times in a row, ended each time without a new event`,
    );
    expect(upstream.seen.map((request) => [request.method, request.headers['last-event-id']])).toEqual([
      ['POST', undefined],
      ...Array.from({ length: MAX_FRUITLESS_RESUMPTIONS }, () => ['GET', 's-1']),
    ]);
  });
});
