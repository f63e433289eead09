/**
 * A value that a long-lived Set or Map keeps while a request is in flight, in a box that `release()` empties when
 * the request ends.
 *
 * Held directly, the value could outlive its entry: V8 (Node 20 and 24) kept part of what a long-lived Set or Map
 * had held across an await alive through young collections after the entry was deleted, so it was promoted and only
 * a full collection took it. `npm run bench:retention` shows it with requests whose text holds numbers (as timings
 * and ids do). An array of slots that holds each request directly, cleared when it ends, keeps nothing there: it
 * is the Set's or Map's hash table, which V8 replaces as entries come and go; most likely a replaced table,
 * promoted while it was current, still points at the entries it held (not verified inside V8). In the gateway,
 * the responses in flight and the requests a client may cancel, held directly, made about 7 KB of every relayed
 * call survive that way, and cost about 15% of its CPU per call (README, Performance). Emptied, the box is all
 * that can stay.
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
