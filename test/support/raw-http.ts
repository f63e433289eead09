import * as http from 'node:http';
import { listenOnLoopback } from './loopback';

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
  const { url, stop } = await listenOnLoopback(server);
  return { url: `${url}/mcp`, server, close: stop };
}
