import * as net from 'node:net';

/**
 * A TCP relay in front of a real service, so a test can take the service
 * "down" and bring it back without touching the service other tests use.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private portNumber = 0;
  private refusing = false;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get port(): number {
    return this.portNumber;
  }

  /** Starts listening (on the same port as before, after a `stop()`). */
  async start(): Promise<void> {
    const server = net.createServer((client) => {
      if (this.refusing) return void client.destroy();
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, '127.0.0.1', () => resolve());
    });
    this.portNumber = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  /**
   * Cuts the open connections and closes each new one at once, as a crashed service would, keeping the port until
   * `resume()`: a port let go of (`stop()`) may be taken by another suite's process before `start()` binds it again,
   * and the client then reaches that process instead.
   */
  cutOff(): void {
    this.refusing = true;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Relays new connections again after `cutOff()`. */
  resume(): void {
    this.refusing = false;
  }

  /** Refuses new connections and cuts the open ones, as a crashed service would. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

export function hostPortOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

export function withHostPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}
