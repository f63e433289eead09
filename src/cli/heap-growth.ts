import * as v8 from 'node:v8';

/**
 * Caps how far V8 lets its heap grow past what the last full garbage collection kept, before it collects again
 * (HEAP_GROWTH_PERCENT). Left to itself, V8 lets a process whose collections are quick grow up to four times its
 * live heap: under load the gateway's RSS then grows with garbage nothing keeps (`npm run bench`, 100 × 50 tools
 * registered: 432–448 MB at concurrency 128, against 266–283 MB with 50%; CPU per call moved less than the VM's
 * own drift between runs). V8 reads the factor at every full collection, so setting it when `serve` starts,
 * before the gateway is loaded, covers the whole run.
 */
export function limitHeapGrowth(percent: number): void {
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
