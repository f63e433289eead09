import * as net from 'node:net';
import { holdPort, type HeldPort } from './loopback';

/**
 * A TCP relay in front of a real service, so a test can take the service
 * "down" and bring it back without touching the service other tests use.
 */
export class TcpProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private portNumber = 0;
  private refusing = false;
  private held?: HeldPort;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get port(): number {
    return this.portNumber;
  }

  /** Starts listening: on the port it had, after `refuse()`; nothing to do while it listens. */
  async start(): Promise<void> {
    if (this.server) return;
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
    this.held?.release();
    this.held = undefined;
  }

  /**
   * Cuts the open connections and closes each new one once accepted, as a crashed service would, keeping the port
   * until `resume()` (`refuse()` refuses them instead).
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

  /**
   * Cuts the open connections and refuses new ones (ECONNREFUSED), as a stopped service does, keeping the port
   * (`holdPort`) until `start()`.
   */
  async refuse(): Promise<void> {
    await this.close();
    this.held ??= await holdPort(this.portNumber);
  }

  /** Cuts the open connections and lets go of the port. */
  async stop(): Promise<void> {
    await this.close();
    this.held?.release();
    this.held = undefined;
  }

  private async close(): Promise<void> {
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
