import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HttpException } from '@nestjs/common';
import type { Express } from 'express';
import { GatewayExpressAdapter } from './express-adapter';

describe('GatewayExpressAdapter', () => {
  let adapter: GatewayExpressAdapter;
  let server: Server;

  beforeEach(async () => {
    adapter = new GatewayExpressAdapter();
    adapter.initHttpServer({});
    server = adapter.getHttpServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it("hands Express requests and responses that already have its app's prototypes", async () => {
    const app = adapter.getInstance<Express>();
    // Before Express's own listener, which would move them onto those prototypes.
    const arrived = new Promise<unknown[]>((resolve) => {
      server.prependListener('request', (req: IncomingMessage, res: ServerResponse) => {
        resolve([Object.getPrototypeOf(req), Object.getPrototypeOf(res)]);
      });
    });
    app.get('/who', (req, res) => {
      res.status(201).json({ ip: req.ip, path: req.path, query: req.query });
    });

    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/who?tag=a`);

    const [requestPrototype, responsePrototype] = await arrived;
    expect(requestPrototype).toBe(app.request);
    expect(responsePrototype).toBe(app.response);
    // Express's request and response methods are all there, through the chain.
    expect(response.status).toBe(201);
    expect(await response.json()).toEqual({ ip: '127.0.0.1', path: '/who', query: { tag: 'a' } });
  });

  it('matches paths as written, case included', async () => {
    const app = adapter.getInstance<Express>();
    app.get('/mcp', (_req, res) => {
      res.status(200).end();
    });
    app.use('/guarded', (_req, res) => {
      res.status(204).end();
    });
    const { port } = server.address() as AddressInfo;
    const status = async (path: string) => (await fetch(`http://127.0.0.1:${port}${path}`)).status;
    expect([await status('/mcp'), await status('/guarded/x')]).toEqual([200, 204]);
    for (const path of ['/MCP', '/Mcp', '/Guarded/x', '/GUARDED'])
      expect([path, await status(path)]).toEqual([path, 404]);
  });

  it('names an undecodable path parameter and the rule, never the segment', async () => {
    const app = adapter.getInstance<Express>();
    app.get('/servers/:serverName/versions/:version', (_req, res) => {
      res.status(200).end();
    });
    app.use('/mounted/:id', (_req, res) => {
      res.status(200).end();
    });
    // As Nest's handler answers an error: its message, as it is.
    adapter.setErrorHandler((error: Error, _req: unknown, res: ServerResponse) => {
      res.statusCode = error instanceof HttpException ? error.getStatus() : 500;
      res.end(error.message);
    });
    const { port } = server.address() as AddressInfo;
    const answer = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`);
      return [response.status, await response.text()];
    };
    const hostile = `%ZZ<script>%0A%1B${'A'.repeat(2000)}`;
    expect(await answer(`/servers/${hostile}/versions/1.0.0`)).toEqual([
      400,
      'path parameter serverName is not valid percent-encoding',
    ]);
    expect(await answer(`/servers/com.example%2Fx/versions/${hostile}`)).toEqual([
      400,
      'path parameter version is not valid percent-encoding',
    ]);
    expect(await answer(`/servers/%ff/versions/%E0%A4%A`)).toEqual([
      400,
      'path parameters serverName, version are not valid percent-encoding',
    ]);
    // Not a route's parameter: no name to give.
    expect(await answer(`/mounted/${hostile}`)).toEqual([400, 'a path segment is not valid percent-encoding']);
    expect(await answer('/servers/com.example%2Fx/versions/1.0.0')).toEqual([200, '']);
  });

  it('refuses the Nest options it does not serve', () => {
    const other = new GatewayExpressAdapter();
    expect(() => other.initHttpServer({ httpsOptions: {} })).toThrow('plain HTTP');
    expect(() => other.initHttpServer({ forceCloseConnections: true })).toThrow('plain HTTP');
  });
});
