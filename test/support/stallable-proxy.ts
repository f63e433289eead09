import * as net from 'node:net';

/**
 * A TCP relay that can hold back the service's answers without closing
 * anything, as a hung service would: `stall()` stops relaying replies (they
 * wait, in order), `resume()` delivers them and relays again.
 */
export class StallableProxy {
  private server?: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private stalled = false;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  get port(): number {
    return (this.server?.address() as net.AddressInfo | undefined)?.port ?? 0;
  }

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      const pair = { client, upstream };
      this.pairs.add(pair);
      const end = () => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      for (const socket of [client, upstream]) {
        socket.on('error', end);
        socket.on('close', end);
      }
      client.pipe(upstream);
      if (!this.stalled) upstream.pipe(client);
      else upstream.pause();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  stall(): void {
    this.stalled = true;
    for (const { client, upstream } of this.pairs) {
      upstream.unpipe(client);
      upstream.pause();
    }
  }

  /** Does nothing unless stalled: piping a connection twice would relay every reply twice, corrupting the stream. */
  resume(): void {
    if (!this.stalled) return;
    this.stalled = false;
    for (const { client, upstream } of this.pairs) upstream.pipe(client);
  }

  /**
   * Closes every connection, the answers it holds back never delivered, as a network path lost mid-request would;
   * the proxy goes on listening, and relays the connections that come next.
   */
  cut(): void {
    this.stalled = false;
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
