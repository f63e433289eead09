/**
 * A value that a long-lived Set or Map keeps while a request is in flight, in a box that `release()` empties when
 * the request ends.
 *
 * Held directly, the value outlived its entry: V8 (Node 20 and 24) kept what a long-lived Set or Map had held
 * across an await reachable through young collections, so it was promoted, with everything it reached, and only a
 * full collection took it (`npm run bench:retention`). Two such collections on the relay path (the responses in
 * flight and the requests a client may cancel) made about 8 KB of every relayed call survive that way, and with
 * it a sixth of the gateway's CPU per call (README, Performance). Emptied, the box is all that can stay.
 */
export class Held<T> {
  constructor(private held: T | undefined) {}

  get value(): T | undefined {
    return this.held;
  }

  release(): void {
    this.held = undefined;
  }
}
