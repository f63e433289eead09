import * as net from 'node:net';
import { PortHold } from './loopback';

/** A client's connection to a relay, and the relay's own connection to the target for it. */
export interface RelayedPair {
  client: net.Socket;
  upstream: net.Socket;
}

/**
 * A TCP relay on a loopback port in front of a real service, so that a test can break the path to the service
 * without touching the service other tests use. Each connection a client opens gets one of its own to the target,
 * the two cut together on an error of either and by `stop()`; how bytes go between them is the subclass's `relay()`.
 */
export abstract class TcpRelay {
  /** The open connections, each with its connection to the target. */
  protected readonly pairs = new Set<RelayedPair>();
  private server?: net.Server;
  private portNumber = 0;
  private readonly portHold = new PortHold();

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
    const server = net.createServer((client) => this.relay(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.portNumber, '127.0.0.1', () => resolve());
    });
    this.portNumber = (server.address() as net.AddressInfo).port;
    this.server = server;
    this.portHold.release();
  }

  /**
   * Cuts the open connections and refuses new ones (ECONNREFUSED), as a stopped service does, keeping the port
   * (`holdPort`) until `start()`.
   */
  async refuse(): Promise<void> {
    await this.close();
    await this.portHold.hold(this.portNumber);
  }

  /** Cuts the open connections and lets go of the port. */
  async stop(): Promise<void> {
    await this.close();
    this.portHold.release();
  }

  /** Relays a client's connection (`connectTarget`), or closes it. */
  protected abstract relay(client: net.Socket): void;

  /** Opens the relay's connection to the target for `client`: the pair is cut on an error of either. */
  protected connectTarget(client: net.Socket): RelayedPair {
    const pair = { client, upstream: net.connect(this.targetPort, this.targetHost) };
    this.pairs.add(pair);
    for (const socket of [pair.client, pair.upstream]) {
      socket.on('error', () => cutPair(pair));
      socket.on('close', () => {
        if (pair.client.destroyed && pair.upstream.destroyed) this.pairs.delete(pair);
      });
    }
    return pair;
  }

  /** Cuts every open connection, and its connection to the target. */
  protected cutAll(): void {
    for (const pair of this.pairs) cutPair(pair);
    this.pairs.clear();
  }

  private async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.cutAll();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Closes both sockets of a pair. */
export function cutPair({ client, upstream }: RelayedPair): void {
  client.destroy();
  upstream.destroy();
}
