import { loadConfig } from '../src/config/config';
import { type ListenHandlers, type ListenSession, openListenSession } from '../src/discovery/listen-session';
import type { UpstreamTarget } from '../src/registry/server.schema';
import { UpstreamConnector } from '../src/upstream/upstream-connector';
import { classifyUpstreamError, UpstreamError } from '../src/upstream/upstream-error';
import { UrlGuard } from '../src/upstream/url-guard';
import { sleep, waitUntil } from './support/eventually';
import { SCRIPTED_SESSION as SESSION, ScriptedUpstream } from './support/scripted-upstream';
import { upstreamTarget } from './support/upstream-target';

function recorder(): ListenHandlers & { notifications: string[]; drops: unknown[] } {
  const seen = { notifications: [] as string[], drops: [] as unknown[] };
  return {
    ...seen,
    notified: (method) => seen.notifications.push(method),
    dropped: (error) => seen.drops.push(error),
  };
}

describe('listen sessions (list-changed watchers) against a scripted upstream', () => {
  const config = loadConfig({ UPSTREAM_ALLOWED_HOSTS: 'loopback', UPSTREAM_CONNECT_TIMEOUT_MS: '2000' });
  const guard = new UrlGuard(config.upstream);
  const connector = new UpstreamConnector(config, guard);
  let upstream: ScriptedUpstream;
  let target: UpstreamTarget;
  const sessions: ListenSession[] = [];

  beforeEach(async () => {
    upstream = new ScriptedUpstream();
    const url = await upstream.start();
    target = upstreamTarget(url);
  });

  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((session) => session.close()));
    await upstream.stop();
  });

  async function open(handlers: ListenHandlers): Promise<ListenSession> {
    const session = await openListenSession(connector, guard, target, handlers);
    sessions.push(session);
    return session;
  }

  it('opens with the handshake and the event stream, under the upstream session', async () => {
    await open(recorder());
    expect(upstream.streams).toHaveLength(1);
    const [initialize, initialized] = upstream.bodies('POST');
    expect(initialize).toMatchObject({
      method: 'initialize',
      params: { capabilities: {}, clientInfo: { name: 'mcp-gateway' } },
    });
    expect(initialized).toEqual({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const get = upstream.received.find((entry) => entry.method === 'GET')!;
    expect(get.headers['mcp-session-id']).toBe(SESSION);
    expect(get.headers['mcp-protocol-version']).toBe('2025-06-18');
    expect(get.headers.accept).toBe('text/event-stream');
  });

  it('hears notifications on the stream and passes over events that are not messages', async () => {
    const handlers = recorder();
    await open(handlers);
    upstream.send('not json');
    upstream.send('[1,2]');
    upstream.send('{"jsonrpc":"2.0","method":7}');
    upstream.send('null');
    upstream.send('{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}');
    upstream.send(
      JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { data: 'x'.repeat(100_000) } }),
    );
    await waitUntil(() => handlers.notifications.length === 2, 'two notifications were heard');
    expect(handlers.notifications).toEqual(['notifications/tools/list_changed', 'notifications/message']);
    expect(handlers.drops).toEqual([]);
  });

  it("answers the upstream's requests: a ping with an empty result, anything else with method not found", async () => {
    await open(recorder());
    upstream.send('{"jsonrpc":"2.0","id":"p-1","method":"ping"}');
    upstream.send('{"jsonrpc":"2.0","id":9,"method":"sampling/createMessage","params":{}}');
    await waitUntil(() => upstream.bodies('POST').length === 4, 'both answers arrived');
    const answers = upstream.bodies('POST').slice(2);
    expect(answers).toEqual(
      expect.arrayContaining([
        { jsonrpc: '2.0', id: 'p-1', result: {} },
        { jsonrpc: '2.0', id: 9, error: expect.objectContaining({ code: -32601 }) },
      ]),
    );
    const answerHeaders = upstream.received.filter((entry) => entry.body && !('method' in entry.body));
    for (const entry of answerHeaders) expect(entry.headers['mcp-session-id']).toBe(SESSION);
  });

  it('pings: resolves on an answer, rejects as a timeout when none comes in time', async () => {
    const session = await open(recorder());
    await expect(session.ping(2_000)).resolves.toBeUndefined();
    const ping = upstream.bodies('POST').find((body) => body.method === 'ping')!;
    expect(ping).toMatchObject({ jsonrpc: '2.0', id: expect.any(String) });
    upstream.pingAnswer = 'none';
    const failure = await session.ping(200).catch((error: unknown) => error);
    expect(classifyUpstreamError(failure).kind).toBe('timeout');
  });

  it('reports a stream the upstream ended, once; a session it closed itself ends upstream and reports nothing', async () => {
    const ended = recorder();
    await open(ended);
    upstream.streams[0]!.end();
    await waitUntil(() => ended.drops.length === 1, 'the drop was reported');
    await sleep(100);
    expect(ended.drops).toEqual([undefined]);

    const closing = recorder();
    const session = await open(closing);
    await session.close();
    await waitUntil(() => upstream.streams.length === 0, 'the upstream saw its stream close');
    const deleted = upstream.received.filter((entry) => entry.method === 'DELETE');
    expect(deleted.map((entry) => entry.headers['mcp-session-id'])).toEqual([SESSION]);
    await sleep(100);
    expect(closing.drops).toEqual([]);
    await session.close();
    expect(upstream.received.filter((entry) => entry.method === 'DELETE')).toHaveLength(1);
  });

  it('opens without a stream when the upstream offers none (405), and is pinged', async () => {
    upstream.getStatus = 405;
    const handlers = recorder();
    const session = await open(handlers);
    await expect(session.ping(2_000)).resolves.toBeUndefined();
    expect(upstream.streams).toHaveLength(0);
    expect(handlers.drops).toEqual([]);
  });

  it('fails to open when the stream is refused otherwise, and ends the half-open session', async () => {
    upstream.getStatus = 500;
    const failure = await openListenSession(connector, guard, target, recorder()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(UpstreamError);
    expect(classifyUpstreamError(failure)).toMatchObject({ kind: 'http_status', httpStatus: 500 });
    const deleted = upstream.received.filter((entry) => entry.method === 'DELETE');
    expect(deleted.map((entry) => entry.headers['mcp-session-id'])).toEqual([SESSION]);
  });

  it('refuses a URL the policy refuses, before anything reaches it', async () => {
    const strict = new UrlGuard({ allowedHosts: [], deniedHosts: [] });
    const failure = await openListenSession(connector, strict, target, recorder()).catch((error: unknown) => error);
    expect(classifyUpstreamError(failure).kind).toBe('refused_url');
    expect(upstream.received).toEqual([]);
  });
});
