import type * as http from 'node:http';
import { loadConfig } from '../src/config/config';
import { readCatalog } from '../src/discovery/upstream-catalog';
import { MAX_SESSION_READ_BYTES, UpstreamConnector } from '../src/upstream/upstream-connector';
import { UrlGuard } from '../src/upstream/url-guard';
import { type RawHttpServer, startRawHttpServer as brokenServer } from './support/raw-http';
import { writePast } from './support/scripted-upstream';
import { GREET_TOOLS, TestUpstream } from './support/upstream';
import { upstreamFailureOf as failureOf, upstreamTarget as target } from './support/upstream-target';

function connectorWith(env: Record<string, string>): UpstreamConnector {
  const config = loadConfig({ UPSTREAM_ALLOWED_HOSTS: 'loopback', ...env });
  return new UpstreamConnector(config, new UrlGuard(config.upstream));
}

describe('UpstreamConnector', () => {
  let upstream: TestUpstream;
  const connector = connectorWith({ GREET_KEY: 'secret-value' });

  beforeAll(async () => {
    upstream = await TestUpstream.start('greet', GREET_TOOLS);
  });

  afterAll(async () => {
    await upstream.stop();
  });

  it('opens an initialized session and reports the negotiated protocol version', async () => {
    const session = await connector.connect(target(upstream.url));
    try {
      expect(session.protocolVersion).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(session.client.getServerVersion()).toMatchObject({ name: 'greet' });
      expect((await session.client.listTools()).tools.map((tool) => tool.name)).toEqual(['echoHai']);
    } finally {
      await session.close();
    }
  });

  it('sends static header secrets from the named environment variables, and never an Authorization it was not told to', async () => {
    const seen: http.IncomingHttpHeaders[] = [];
    const spy = await brokenServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(500).end();
    });
    try {
      await failureOf(
        connector.connect(
          target(spy.url, { auth: { type: 'headers', headers: { 'X-Api-Key': { env: 'GREET_KEY' } } } }),
        ),
      );
      expect(seen[0]?.['x-api-key']).toBe('secret-value');
      expect(seen[0]?.authorization).toBeUndefined();
    } finally {
      await spy.close();
    }
  });

  it('fails with an auth error naming (not showing) a missing secret variable', async () => {
    const failure = await failureOf(
      connector.connect(
        target(upstream.url, { auth: { type: 'headers', headers: { 'X-Api-Key': { env: 'NOT_SET_ANYWHERE' } } } }),
      ),
    );
    expect(failure).toEqual({
      kind: 'auth',
      message: 'environment variable NOT_SET_ANYWHERE (for header X-Api-Key) is not set',
    });
  });

  it.each([
    [500, 'http_status'],
    [404, 'http_status'],
    [401, 'auth'],
    [403, 'auth'],
  ] as const)('classifies an HTTP %i answer as %s', async (status, kind) => {
    const broken = await brokenServer((_req, res) => res.writeHead(status).end());
    try {
      const failure = await failureOf(connector.connect(target(broken.url)));
      expect(failure.kind).toBe(kind);
      expect(failure.httpStatus).toBe(status);
    } finally {
      await broken.close();
    }
  });

  it('classifies a refused connection', async () => {
    const closed = await brokenServer((_req, res) => res.end());
    await closed.close();
    expect((await failureOf(connector.connect(target(closed.url)))).kind).toBe('connection_refused');
  });

  it('classifies an upstream that never answers as a timeout, within the bound', async () => {
    const hanging = await brokenServer(() => undefined);
    try {
      const started = Date.now();
      const failure = await failureOf(connector.connect(target(hanging.url), { timeoutMs: 300 }));
      expect(failure.kind).toBe('timeout');
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await hanging.close();
    }
  });

  it('classifies a host that does not resolve', async () => {
    expect((await failureOf(connector.connect(target('http://no-such-host.invalid/mcp')))).kind).toBe('dns');
  });

  it('classifies an answer that is not MCP as a protocol error', async () => {
    const html = await brokenServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":'),
    );
    try {
      expect((await failureOf(connector.connect(target(html.url)))).kind).toMatch(/protocol|other/);
    } finally {
      await html.close();
    }
  });

  it('refuses a URL the policy forbids before connecting', async () => {
    const strict = connectorWith({ UPSTREAM_ALLOWED_HOSTS: '' });
    expect(await failureOf(strict.connect(target(upstream.url)))).toEqual({
      kind: 'refused_url',
      message: 'the upstream URL address 127.0.0.1 is loopback; allow it with UPSTREAM_ALLOWED_HOSTS',
    });
  });

  describe('an upstream that answers a list without end', () => {
    /**
     * Initializes as a tools server, then answers `tools/list` with a list that goes on past MAX_SESSION_READ_BYTES
     * and never ends (the connection stays open), as JSON or as an event stream.
     */
    function endlessLister(contentType: 'application/json' | 'text/event-stream'): Promise<RawHttpServer> {
      return brokenServer((req, res) => {
        let text = '';
        req.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        req.on('end', () => {
          if (req.method !== 'POST') {
            res.writeHead(405).end();
            return;
          }
          const message = JSON.parse(text) as { id?: number; method: string };
          if (message.id === undefined) {
            res.writeHead(202).end();
            return;
          }
          if (message.method === 'initialize') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                jsonrpc: '2.0',
                id: message.id,
                result: {
                  protocolVersion: '2025-06-18',
                  capabilities: { tools: {} },
                  serverInfo: { name: 'endless', version: '1' },
                },
              }),
            );
            return;
          }
          res.writeHead(200, { 'content-type': contentType });
          const start = `{"jsonrpc":"2.0","id":${message.id},"result":{"tools":[`;
          res.write(contentType === 'text/event-stream' ? `data: ${start}` : start);
          const tool = Buffer.from('{"name":"t","inputSchema":{"type":"object"}},'.repeat(20_000));
          writePast(res, tool, MAX_SESSION_READ_BYTES);
        });
      });
    }

    it.each(['application/json', 'text/event-stream'] as const)(
      'fails the read as a protocol error once the upstream sent more than the gateway reads (%s)',
      async (contentType) => {
        const endless = await endlessLister(contentType);
        try {
          const session = await connector.connect(target(endless.url));
          try {
            // Well within the 60 s request bound: the read stops at the limit, not when the upstream stops.
            expect(await failureOf(readCatalog(session, { timeoutMs: 60_000 }))).toEqual({
              kind: 'protocol',
              message: 'the upstream sent more than 64 MiB in one session, more than the gateway reads',
              httpStatus: undefined,
            });
          } finally {
            await session.close();
          }
        } finally {
          await endless.close();
        }
      },
    );
  });
});
