import type * as net from 'node:net';
import { cutPair, type RelayedPair, TcpRelay } from './tcp-relay';

/**
 * A TCP relay that can hold back the service's answers without closing
 * anything, as a hung service would: `stall()` stops relaying replies (they
 * wait, in order), `resume()` delivers them and relays again. `stallLatest()`
 * holds back one connection's alone, as a path lost for it alone would.
 */
export class StallableProxy extends TcpRelay {
  private stalled = false;
  /** The connections whose replies wait. */
  private readonly holding = new WeakSet<RelayedPair>();

  protected relay(client: net.Socket): void {
    const pair = this.connectTarget(client);
    const { upstream } = pair;
    // Either side closing takes the other along: a paused upstream's end is never read, so piping would not end it.
    for (const socket of [client, upstream]) socket.on('close', () => cutPair(pair));
    client.pipe(upstream);
    if (!this.stalled) upstream.pipe(client);
    else this.hold(pair);
  }

  stall(): void {
    this.stalled = true;
    for (const pair of this.pairs) this.hold(pair);
  }

  /** Holds back the replies of the connection opened last alone; the others, and those that come next, go on. */
  stallLatest(): void {
    const latest = [...this.pairs].at(-1);
    if (!latest) throw new Error('no connection to stall');
    this.hold(latest);
  }

  /** Relays held replies again; a connection not held is left as it is: piped twice, it would relay each reply twice. */
  resume(): void {
    this.stalled = false;
    for (const pair of this.pairs) {
      if (!this.holding.delete(pair)) continue;
      pair.upstream.pipe(pair.client);
    }
  }

  /**
   * Closes every connection, the answers it holds back never delivered, as a network path lost mid-request would;
   * the proxy goes on listening, and relays the connections that come next.
   */
  cut(): void {
    this.stalled = false;
    this.cutAll();
  }

  private hold(pair: RelayedPair): void {
    if (this.holding.has(pair)) return;
    this.holding.add(pair);
    pair.upstream.unpipe(pair.client);
    pair.upstream.pause();
  }
}
