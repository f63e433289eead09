import type * as net from 'node:net';
import { cutPair, TcpRelay } from './tcp-relay';

/**
 * A TCP relay that can hold back the service's answers without closing
 * anything, as a hung service would: `stall()` stops relaying replies (they
 * wait, in order), `resume()` delivers them and relays again.
 */
export class StallableProxy extends TcpRelay {
  private stalled = false;

  protected relay(client: net.Socket): void {
    const pair = this.connectTarget(client);
    const { upstream } = pair;
    // Either side closing takes the other along: a paused upstream's end is never read, so piping would not end it.
    for (const socket of [client, upstream]) socket.on('close', () => cutPair(pair));
    client.pipe(upstream);
    if (!this.stalled) upstream.pipe(client);
    else upstream.pause();
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
    this.cutAll();
  }
}
