import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/**
 * Garbage-collector settings `serve` applies when it starts, before the gateway is loaded, so that they cover
 * the whole run (V8 reads both at every collection).
 *
 * Allocation-site pretenuring is turned off. V8 allocates the objects of a site straight in the old generation
 * once most of them outlived a young-generation collection; start-up (the catalog, registration, discovery) made
 * it decide that for sites the relayed calls share, so their short-lived objects went to the old generation,
 * and, dead there until the next full collection, kept the young objects they pointed to alive through every
 * young collection meanwhile. `npm run bench`, `/mcp/{slug}` at concurrency 1, in the gateway: young collections
 * paused 2.1 ms (median) instead of 4.9–5.9, about 0.9 MB survived each instead of 2.6, and 5.5 KB per call was
 * promoted instead of 17.
 *
 * HEAP_GROWTH_PERCENT caps how far V8 lets its heap grow past what the last full collection kept, before it
 * collects again. Left to itself, V8 lets a process whose collections are quick grow up to four times its live
 * heap: under load the gateway's RSS then grows with garbage nothing keeps (`npm run bench`, 100 × 50 tools
 * registered: 432–448 MB at concurrency 128, against 266–283 MB with 50%). Without pretenuring more of the
 * calls' garbage reaches the old generation by way of the young one, and the peak at concurrency 128 rose to
 * 295–310 MB; 30% brings it back to 264–282 MB. In neither step did CPU per call move more than the VM's own
 * drift between runs.
 */
export function tuneGarbageCollection(heapGrowthPercent: number): void {
  v8.setFlagsFromString('--no-allocation-site-pretenuring');
  if (heapGrowthPercent > 0) v8.setFlagsFromString(`--heap-growing-percent=${heapGrowthPercent}`);
}

/**
 * One full collection that gives memory back to the system: run once when the gateway is ready, and again when it
 * has gone idle (`trimWhenIdle`). Start-up (modules, migrations, the query compiler, Nest's container) allocates
 * fast enough that V8 grows the young generation to its largest, and a process waiting for traffic then makes few
 * collections that could shrink it.
 * Node 20's V8 shrank it by itself about 25 s after start; Node 24's (the container's runtime) had not after 40 s,
 * and the gateway sat at 199 MB idle, 64 MB of it a young generation holding 2 MB of objects; 126 MB after this
 * collection (`npm run bench`, idle RSS after start; the pause was 139 ms there, 3 ms on Node 20, whose V8 does not
 * know the `last-resort` flavour and makes an ordinary full collection). `gc` is reached as Jest reaches it for
 * `--logHeapUsage`: the flag exposes it in a context created while it is on, and it is turned off again at once.
 * Returns the pause in milliseconds.
 */
export function collectGarbage(): number {
  const started = performance.now();
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
  v8.setFlagsFromString('--no-expose-gc');
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return performance.now() - started;
}

export interface IdleTrimOptions {
  /** How often the gateway looks at its event loop and heap. */
  checkMs: number;
  /** Busy at most this share of the last period (event loop utilization) counts as idle. */
  idleUtilization: number;
  /** Heap V8 holds beyond its objects (committed minus used) worth a collection to give back. */
  spareBytes: number;
  /** At least this long between two collections. */
  minIntervalMs: number;
}

export const IDLE_TRIM: IdleTrimOptions = {
  checkMs: 10_000,
  idleUtilization: 0.05,
  spareBytes: 16 * 1024 * 1024,
  minIntervalMs: 30_000,
};

/**
 * Gives memory back when the gateway has gone idle holding much more heap than it uses: the same collection as
 * at start-up, once its event loop was busy at most `idleUtilization` of a check's period and V8 holds at least
 * `spareBytes` beyond its objects. V8's memory reducer does this by itself once it sees a low allocation rate,
 * but the gateway's own background work (health probes, list-changed pings, the catalog's poll) often kept it
 * from deciding: with 5,000 tools just registered, idle RSS over the next 40 s was 135 MB in one run and 188 MB
 * in the next, a 32 MB young generation holding a few MB (`npm run bench`); with this, 135 and 136 MB in two runs
 * (the collection came 10 s after the registrations, 2–6 ms, 31 MB of heap given back). Made while allocation is
 * slow, the collection lets V8 shrink the young generation on Node 20 too (an ordinary collection there, as at
 * start-up). `onCollected` hears each collection's pause and the bytes it gave back. Returns the function that
 * stops it.
 */
export function trimWhenIdle(
  onCollected: (pauseMs: number, releasedBytes: number) => void,
  options: IdleTrimOptions = IDLE_TRIM,
): () => void {
  let last = performance.eventLoopUtilization();
  let collectedAt = Number.NEGATIVE_INFINITY;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    last = now;
    if (utilization > options.idleUtilization || performance.now() - collectedAt < options.minIntervalMs) return;
    const before = v8.getHeapStatistics();
    if (before.total_heap_size - before.used_heap_size < options.spareBytes) return;
    const pauseMs = collectGarbage();
    collectedAt = performance.now();
    // The pause is the gateway's own doing, not a sign of work: the next period starts after it.
    last = performance.eventLoopUtilization();
    onCollected(pauseMs, before.total_heap_size - v8.getHeapStatistics().total_heap_size);
  }, options.checkMs);
  timer.unref();
  return () => clearInterval(timer);
}
