import type * as http from 'node:http';
import * as net from 'node:net';

/** A server listening on a loopback port the system chose. */
export interface LoopbackListener {
  /** `http://127.0.0.1:{port}`, without a path. */
  readonly url: string;
  readonly port: number;
  /** Closes the server and every connection still open on it. */
  stop(): Promise<void>;
}

/** Starts `server` listening on 127.0.0.1, on a port the system chooses. */
export async function listenOnLoopback(server: http.Server): Promise<LoopbackListener> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback port that was free a moment ago and that nothing listens on now. */
export async function freeLoopbackPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
