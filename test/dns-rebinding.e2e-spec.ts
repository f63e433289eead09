import { once } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../src/config/config';
import { StreamableHttpClient } from '../src/mcp/streamable-http-client';
import { UpstreamConnector } from '../src/upstream/upstream-connector';
import { type Resolver, UrlGuard } from '../src/upstream/url-guard';
import { GREET_TOOLS, TestUpstream } from './support/upstream';
import { upstreamFailureOf as failureOf, upstreamTarget as target } from './support/upstream-target';

/**
 * DNS rebinding: a name that resolves to an allowed address when its URL is checked and to a refused one when the
 * connection is opened. The guard's resolver stands for DNS (TTL 0), so `rebind.test` answers what each test says, in
 * turn; the address a connection is opened to must be one the policy was asked about.
 */

/** A resolver that gives each answer once, in order, and the last one from then on. */
function answering(...answers: string[][]): Resolver {
  let asked = 0;
  return () => Promise.resolve(answers[Math.min(asked++, answers.length - 1)] ?? []);
}

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };

describe("the relay's HTTP client under DNS rebinding", () => {
  /** Listens on every address, so 127.0.0.1 and 127.0.0.2 both reach it: only the policy can stop a connection. */
  let server: http.Server;
  let port: number;
  /** The local address of each request's connection: the address the client connected to. */
  const reached: string[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      reached.push(req.socket.localAddress ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    server.listen(0, '0.0.0.0');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  });

  beforeEach(() => {
    reached.length = 0;
  });

  it('refuses to connect when the name resolves to a refused address by the time the connection is opened', async () => {
    const guard = new UrlGuard(
      { allowedHosts: ['127.0.0.2'], deniedHosts: [] },
      answering(['127.0.0.2'], ['127.0.0.1']),
    );
    const url = `http://rebind.test:${port}/mcp`;
    await expect(guard.check(url)).resolves.toEqual({ allowed: true });

    const failure = await failureOf(new StreamableHttpClient(guard).post(url, ping, { headers: {} }));

    expect(failure).toEqual({
      kind: 'refused_url',
      message: expect.stringMatching(/address 127\.0\.0\.1 is loopback/) as unknown,
    });
    expect(reached).toEqual([]);
  });

  it('connects to the address the policy allowed, not to one resolved apart from it', async () => {
    const guard = new UrlGuard({ allowedHosts: ['127.0.0.2'], deniedHosts: [] }, answering(['127.0.0.2']));

    const reply = await new StreamableHttpClient(guard).post(`http://rebind.test:${port}/mcp`, ping, { headers: {} });

    expect(reply.status).toBe(200);
    expect(reached).toEqual(['127.0.0.2']);
  });
});

describe('UpstreamConnector (MCP SDK sessions) under DNS rebinding', () => {
  let upstream: TestUpstream;

  beforeAll(async () => {
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
  });

  afterAll(async () => {
    await upstream.stop();
  });

  /** `rebind.test` on the upstream's port; the upstream listens on 127.0.0.1, the only address the policy allows. */
  const rebound = (): string => upstream.url.replace('127.0.0.1', 'rebind.test');

  function connectorWith(resolve: Resolver): UpstreamConnector {
    return new UpstreamConnector(
      loadConfig({}),
      new UrlGuard({ allowedHosts: ['127.0.0.1'], deniedHosts: [] }, resolve),
    );
  }

  it('refuses the connection when the name resolves to a refused address after the URL was checked', async () => {
    const connector = connectorWith(answering(['127.0.0.1'], ['127.0.0.2']));

    const failure = await failureOf(connector.connect(target(rebound())));

    expect(failure).toEqual({
      kind: 'refused_url',
      message: expect.stringMatching(/address 127\.0\.0\.2 is loopback/) as unknown,
    });
  });

  it('opens the session over the address the policy allowed', async () => {
    const session = await connectorWith(answering(['127.0.0.1'])).connect(target(rebound()));
    try {
      expect(session.client.getServerVersion()).toMatchObject({ name: 'greet' });
    } finally {
      await session.close();
    }
  });
});
