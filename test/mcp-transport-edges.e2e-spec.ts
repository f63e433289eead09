import request from 'supertest';
import { ConformanceUpstream } from './support/conformance-upstream';
import { eventually } from './support/eventually';
import type { TestGateway } from './support/gateway';
import { type GuardedUpstream, guardUpstream } from './support/guarded-upstream';

const BOTH = 'application/json, text/event-stream';
const JSON_ONLY = 'application/json';
const STREAM_ONLY = 'text/event-stream';

/** The data of each SSE event in a body read whole. */
function eventData(body: string): unknown[] {
  return body
    .split('\n\n')
    .filter((block) => block.includes('data:'))
    .map((block): unknown =>
      JSON.parse(
        block
          .split('\n')
          .filter((line) => line.startsWith('data:'))
          .map((line) => line.slice(5).trim())
          .join('\n'),
      ),
    );
}

/**
 * What the SDK client, tested everywhere else, never does. Accept decides the kind of answer: a client that lists
 * only `application/json` (a plain JSON-RPC client) gets JSON even where the upstream streams, one that lists only
 * `text/event-stream` gets events even where the gateway answers in one piece. MCP-Protocol-Version must name a
 * version the gateway speaks, or the one the session agreed on. And an upstream that asks back what it may not
 * (sampling from the gateway's own session) is answered rather than left waiting.
 */
describe('MCP transport edges: Accept, MCP-Protocol-Version, requests an upstream sends back', () => {
  let deployment: GuardedUpstream<ConformanceUpstream>;
  let gw: TestGateway;
  let token: string;
  let slug: string;
  const progressTool = { name: 'test_tool_with_progress', arguments: {}, _meta: { progressToken: 'p1' } };

  beforeAll(async () => {
    deployment = await guardUpstream(await ConformanceUpstream.start(), { slug: 'edges' });
    ({ gw, slug } = deployment);
    token = await deployment.issuer.token({ roles: ['Gateway.Admin'] });
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  /** POSTs one message, or a batch (an array), each stamped `jsonrpc: '2.0'`. */
  async function post(
    path: string,
    accept: string | undefined,
    message: Record<string, unknown> | Record<string, unknown>[],
    session?: string,
    extra: Record<string, string> = {},
  ): Promise<Response> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      ...extra,
    };
    if (accept !== undefined) headers.accept = accept;
    if (session) headers['mcp-session-id'] = session;
    const stamp = (one: Record<string, unknown>) => ({ jsonrpc: '2.0', ...one });
    const body = JSON.stringify(Array.isArray(message) ? message.map(stamp) : stamp(message));
    return fetch(`${gw.url}${path}`, { method: 'POST', headers, body });
  }

  /** A session on `path`, opened and confirmed with `accept`; the initialize answer's type and body. */
  async function open(path: string, accept: string | undefined) {
    const params = {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'accept-test', version: '1' },
    };
    const answer = await post(path, accept, { id: 0, method: 'initialize', params });
    expect(answer.status).toBe(200);
    const session = answer.headers.get('mcp-session-id') ?? undefined;
    expect(session).toBeDefined();
    const type = answer.headers.get('content-type');
    const body = await answer.text();
    const initialized = await post(path, accept, { method: 'notifications/initialized' }, session);
    expect(initialized.status).toBe(202);
    return { session: session!, type, body };
  }

  it('answers a JSON-only client in JSON on /mcp/{slug}: the response alone, where the upstream streams progress', async () => {
    const path = `/mcp/${slug}`;
    const both = await open(path, BOTH);
    const streamed = await post(path, BOTH, { id: 1, method: 'tools/call', params: progressTool }, both.session);
    // The upstream streams: the usual client sees the progress, then the result.
    expect(streamed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = eventData(await streamed.text()) as { method?: string; id?: number }[];
    expect(events.filter((event) => event.method === 'notifications/progress')).toHaveLength(3);
    expect(events.at(-1)).toMatchObject({ id: 1, result: { content: [{ type: 'text' }] } });

    const json = await open(path, JSON_ONLY);
    expect(json.type).toMatch(/^application\/json/);
    expect(JSON.parse(json.body)).toMatchObject({ id: 0, result: { serverInfo: expect.any(Object) as unknown } });
    const call = await post(path, JSON_ONLY, { id: 'c1', method: 'tools/call', params: progressTool }, json.session);
    expect(call.status).toBe(200);
    expect(call.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await call.json()).toEqual({
      jsonrpc: '2.0',
      id: 'c1',
      result: { content: [{ type: 'text', text: 'Tool with progress executed successfully' }] },
    });
    // A batch: both answers in one JSON array.
    const batch = await post(
      path,
      JSON_ONLY,
      [
        { id: 'b1', method: 'ping' },
        { id: 'b2', method: 'tools/call', params: progressTool },
      ],
      json.session,
    );
    expect(batch.headers.get('content-type')).toMatch(/^application\/json/);
    const answers = (await batch.json()) as { id: string }[];
    expect(answers.map((answer) => answer.id).sort()).toEqual(['b1', 'b2']);
  });

  it('declines for a JSON-only client what the upstream asks it while it answers, instead of leaving the upstream waiting', async () => {
    const path = `/mcp/${slug}`;
    const json = await open(path, JSON_ONLY);
    const call = await post(
      path,
      JSON_ONLY,
      { id: 's', method: 'tools/call', params: { name: 'test_sampling', arguments: { prompt: 'hi' } } },
      json.session,
    );
    expect(call.headers.get('content-type')).toMatch(/^application\/json/);
    // The upstream's sampling request failed as a client without sampling would have it fail, and the tool said so.
    expect(await call.json()).toMatchObject({
      id: 's',
      result: {
        isError: true,
        content: [{ type: 'text', text: expect.stringContaining('sampling/createMessage: it takes no event stream') }],
      },
    });
  });

  it('answers a JSON-only client in JSON on /mcp, and refuses it the event stream (406)', async () => {
    const json = await open('/mcp', JSON_ONLY);
    expect(json.type).toMatch(/^application\/json/);
    const name = `${slug}__test_tool_with_progress`;
    await eventually(async () => {
      const list = await post('/mcp', JSON_ONLY, { id: 'l', method: 'tools/list' }, json.session);
      expect(list.headers.get('content-type')).toMatch(/^application\/json/);
      const { result } = (await list.json()) as { result: { tools: { name: string }[] } };
      expect(result.tools.map((tool) => tool.name)).toContain(name);
    });
    const call = await post(
      '/mcp',
      JSON_ONLY,
      { id: 7, method: 'tools/call', params: { ...progressTool, name } },
      json.session,
    );
    expect(call.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await call.json()).toMatchObject({ id: 7, result: { content: [{ type: 'text' }] } });

    for (const path of ['/mcp', `/mcp/${slug}`]) {
      const stream = await fetch(`${gw.url}${path}`, {
        headers: { authorization: `Bearer ${token}`, accept: JSON_ONLY, 'mcp-session-id': json.session },
      });
      expect(stream.status).toBe(406);
      expect(await stream.json()).toMatchObject({ error: { message: expect.stringContaining('Not Acceptable') } });
    }
  });

  it('answers a client that takes only event streams with events, where the gateway answers in one piece', async () => {
    for (const path of ['/mcp', `/mcp/${slug}`]) {
      const events = await open(path, STREAM_ONLY);
      expect(events.type).toMatch(/^text\/event-stream/);
      expect(eventData(events.body)).toEqual([expect.objectContaining({ id: 0, result: expect.any(Object) })]);
      const ping = await post(path, STREAM_ONLY, { id: 'p', method: 'ping' }, events.session);
      expect(ping.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(eventData(await ping.text())).toEqual([{ jsonrpc: '2.0', id: 'p', result: {} }]);
    }
    // The aggregate's tool list, written from the catalog's cached bytes.
    const events = await open('/mcp', STREAM_ONLY);
    const list = await post('/mcp', STREAM_ONLY, { id: 'l', method: 'tools/list' }, events.session);
    expect(list.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const [answer] = eventData(await list.text()) as { id: string; result: { tools: unknown[] } }[];
    expect(answer).toMatchObject({ id: 'l' });
    expect(answer!.result.tools.length).toBeGreaterThan(0);
  });

  it('leaves both kinds to a client that names both, a wildcard, neither, or no Accept at all', async () => {
    for (const accept of [BOTH, '*/*', 'application/*, text/*', 'text/html', undefined]) {
      const json = await open('/mcp', accept);
      // The gateway's own answer is JSON to all of them, as before.
      expect([accept, json.type]).toEqual([accept, expect.stringMatching(/^application\/json/)]);
    }
    // `q=0` takes a type back.
    const refusing = await open('/mcp', 'application/json;q=0, text/event-stream');
    expect(refusing.type).toMatch(/^text\/event-stream/);
  });

  it('refuses a request naming a protocol version the gateway does not speak (400), on every method', async () => {
    for (const path of ['/mcp', `/mcp/${slug}`]) {
      const { session } = await open(path, BOTH);
      const ping = (version?: string) =>
        post(
          path,
          BOTH,
          { id: 'v', method: 'ping' },
          session,
          version === undefined ? {} : { 'mcp-protocol-version': version },
        );
      for (const version of [undefined, '2025-11-25', '2025-06-18', '2025-03-26']) {
        expect([path, version, (await ping(version)).status]).toEqual([path, version, 200]);
      }
      for (const version of ['1999-01-01', 'latest', '', 'x'.repeat(4000)]) {
        const refused = await ping(version);
        expect([path, version.length, refused.status]).toEqual([path, version.length, 400]);
        const { error } = (await refused.json()) as { error: { message: string; data: { supported: string[] } } };
        expect(error.message).toMatch(/^Bad Request: unsupported protocol version/);
        expect(error.message.length).toBeLessThan(120);
        expect(error.data.supported).toContain('2025-11-25');
      }
      const headers = { authorization: `Bearer ${token}`, 'mcp-session-id': session, 'mcp-protocol-version': '1.0' };
      const stream = await fetch(`${gw.url}${path}`, { headers: { ...headers, accept: STREAM_ONLY } });
      expect(stream.status).toBe(400);
      await stream.body?.cancel();
      expect((await fetch(`${gw.url}${path}`, { method: 'DELETE', headers })).status).toBe(400);
      // The refused DELETE ended nothing.
      expect((await ping()).status).toBe(200);
    }
  });

  it('declines what an upstream asks the gateway’s own sessions (/mcp, REST bridge), instead of leaving it waiting', async () => {
    const { session } = await open('/mcp', BOTH);
    const name = `${slug}__test_sampling`;
    const sampling = { name, arguments: { prompt: 'hi' } };
    await eventually(async () => {
      const list = await post('/mcp', JSON_ONLY, { id: 'l', method: 'tools/list' }, session);
      const { result } = (await list.json()) as { result: { tools: { name: string }[] } };
      expect(result.tools.map((tool) => tool.name)).toContain(name);
    });
    const declined = expect.stringContaining('sampling/createMessage: it declared no such capability') as unknown;
    for (const [id, accept] of [
      ['streamed', BOTH],
      ['json', JSON_ONLY],
    ] as const) {
      const call = await post('/mcp', accept, { id, method: 'tools/call', params: sampling }, session);
      const text = await call.text();
      const [answer] = call.headers.get('content-type')?.startsWith('text/event-stream')
        ? eventData(text).slice(-1)
        : [JSON.parse(text) as unknown];
      expect(answer).toMatchObject({ id, result: { isError: true, content: [{ type: 'text', text: declined }] } });
    }
    // In a batch, answered in one piece.
    const batch = await post(
      '/mcp',
      BOTH,
      [
        { id: 'b1', method: 'ping' },
        { id: 'b2', method: 'tools/call', params: sampling },
      ],
      session,
    );
    expect(await batch.json()).toEqual([
      { jsonrpc: '2.0', id: 'b1', result: {} },
      expect.objectContaining({ id: 'b2', result: { isError: true, content: [{ type: 'text', text: declined }] } }),
    ]);
    const bridged = await request(gw.url)
      .post(`/mcp/${slug}/tools/test_sampling`)
      .set('authorization', `Bearer ${token}`)
      .send({ prompt: 'hi' });
    expect(bridged.status).toBe(200);
    expect(bridged.body).toMatchObject({ isError: true, content: [{ type: 'text', text: declined }] });
  });
});

/** An upstream whose streams resume (its SDK transport keeps an event store) replays what it sent, to whoever asks. */
describe('MCP transport edges: a resumed event stream on /mcp/{slug}', () => {
  const role = `Replayers.${Math.random().toString(16).slice(2, 10)}`;
  let deployment: GuardedUpstream<ConformanceUpstream>;

  beforeAll(async () => {
    deployment = await guardUpstream(await ConformanceUpstream.start(), {
      slug: 'replay',
      registration: { allowedRoles: [role], toolRules: { deny: ['test_simple_text'] } },
    });
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  /** Each SSE event of a body (read whole, or up to `until`), with its id. */
  async function events(response: Response, until?: (data: string) => boolean) {
    const found: { id?: string; data: string }[] = [];
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return found;
        buffer += value;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const lines = buffer.slice(0, end).split('\n');
          buffer = buffer.slice(end + 2);
          const id = lines
            .find((line) => line.startsWith('id:'))
            ?.slice(3)
            .trim();
          const data = lines
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trim())
            .join('\n');
          found.push({ id, data });
          if (until?.(data)) return found;
        }
      }
    } finally {
      await reader.cancel().catch(() => undefined);
    }
  }

  it('replays a tools/list answer without the tools the caller may not use, as POST answered it', async () => {
    const { gw, slug, issuer } = deployment;
    const headers = {
      authorization: `Bearer ${await issuer.token({ roles: [role] })}`,
      'content-type': 'application/json',
      accept: BOTH,
    };
    const endpoint = `${gw.url}/mcp/${slug}`;
    const params = { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'replay', version: '1' } };
    const init = await fetch(endpoint, {
      method: 'POST',
      headers,
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params }),
    });
    expect(init.status).toBe(200);
    await init.text();
    const session = { ...headers, 'mcp-session-id': init.headers.get('mcp-session-id') ?? '' };
    const initialized = await fetch(endpoint, {
      method: 'POST',
      headers: session,
      body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    });
    expect(initialized.status).toBe(202);

    const listed = await fetch(endpoint, {
      method: 'POST',
      headers: session,
      body: JSON.stringify({ jsonrpc: '2.0', id: 'list-1', method: 'tools/list' }),
    });
    expect(listed.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const posted = await events(listed);
    const answer = posted.find((event) => event.data.includes('"list-1"'));
    const names = (data: string) =>
      (JSON.parse(data) as { result: { tools: { name: string }[] } }).result.tools.map((t) => t.name);
    expect(names(answer!.data)).toContain('test_image_content');
    expect(names(answer!.data)).not.toContain('test_simple_text');
    // The event before the answer (the upstream's priming event) is where a resumption starts from.
    const before = posted[posted.indexOf(answer!) - 1];
    expect(before?.id).toEqual(expect.any(String));

    const resumed = await fetch(endpoint, {
      headers: { ...session, accept: 'text/event-stream', 'last-event-id': before!.id! },
    });
    expect(resumed.status).toBe(200);
    const replayed = (await events(resumed, (data) => data.includes('"list-1"'))).find((event) =>
      event.data.includes('"list-1"'),
    );
    expect(replayed).toBeDefined();
    expect(names(replayed!.data)).toEqual(names(answer!.data));
  });
});
