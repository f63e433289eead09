import * as v8 from 'node:v8';

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
