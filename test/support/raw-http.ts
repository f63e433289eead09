import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RawHttpServer {
  /** The server's URL with path `/mcp`. */
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

/**
 * A plain HTTP server on a loopback port answering every request with
 * `handler`, to play a broken upstream (one that never answers, or refuses).
 */
export async function startRawHttpServer(handler: http.RequestListener): Promise<RawHttpServer> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    server,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
