/**
 * What a long-lived Set or Map does to the objects it holds while they are in flight (src/common/held.ts):
 * `npm run bench:retention`.
 *
 * 32 simulated requests run at once, over and over: each allocates about 5 KB, is kept by a process-wide
 * collection across a 15 ms await, then removed (`slots`: an array of slots instead, no hash table). Each way of keeping them runs in a child process of its own under
 * V8's `--trace-gc-nvp`, and the bytes its young collections promoted are summed: what survives there lives until a
 * full collection. A benchmark, not a test: it prints figures and asserts nothing.
 *
 * Its options are USAGE below (`npm run bench:retention -- --help`).
 */
import { spawnSync } from 'node:child_process';
import { Held } from '../src/common/held';
import { parseCommandLine, runScript, UsageError } from './command-line';

const MODES = ['none', 'set', 'map', 'held-set', 'held-map', 'slots'] as const;
type Mode = (typeof MODES)[number];
const IN_FLIGHT = 32;
const AWAIT_MS = 15;
const USAGE = 'Usage: npm run bench:retention -- [--seconds 8]\n';

/** The collection of one mode: `track` keeps a request, and returns how to let it go. */
function tracker(mode: Mode): (request: object) => () => void {
  const set = new Set<unknown>();
  const map = new Map<number, unknown>();
  const slots: unknown[] = [];
  const free: number[] = [];
  let next = 0;
  switch (mode) {
    case 'none':
      return () => () => undefined;
    case 'set':
      return (request) => {
        set.add(request);
        return () => set.delete(request);
      };
    case 'map':
      return (request) => {
        const id = next++;
        map.set(id, request);
        return () => map.delete(id);
      };
    case 'held-set':
      return (request) => {
        const held = new Held(request);
        set.add(held);
        return () => {
          held.release();
          set.delete(held);
        };
      };
    case 'slots':
      // No hash table: an array of slots, each holding its request directly until it is let go.
      return (request) => {
        const slot = free.pop() ?? slots.length;
        slots[slot] = request;
        return () => {
          slots[slot] = undefined;
          free.push(slot);
        };
      };
    case 'held-map':
      return (request) => {
        const id = next++;
        const held = new Held(request);
        map.set(id, held);
        return () => {
          held.release();
          map.delete(id);
        };
      };
  }
}

/** The child: requests in flight for `seconds`, then exit. V8 prints a line per collection. */
async function simulate(mode: Mode, seconds: number): Promise<void> {
  const track = tracker(mode);
  const until = Date.now() + seconds * 1000;
  let requests = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < until) {
      // Numbers written as text, as requests carry them (timings, ids): with plain text, none of the collections
      // below kept anything on Node 20 (V8 11.3); with these, a Set or Map did.
      const request = {
        parts: Array.from({ length: 40 }, (_, index) => ({ index, text: `${index} ${Math.random()}` })),
      };
      const untrack = track(request);
      await new Promise((resolve) => setTimeout(resolve, AWAIT_MS));
      requests += 1;
      untrack();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  process.stdout.write(`requests=${requests}\n`);
}

function measure(
  mode: Mode,
  seconds: number,
): { requests: number; promotedMb: number; scavenges: number; full: number } {
  const child = spawnSync(
    process.execPath,
    ['--trace-gc-nvp', ...process.execArgv, __filename, '--child', mode, '--seconds', String(seconds)],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 },
  );
  if (child.status !== 0) throw new Error(`the ${mode} child failed: ${child.stderr}`);
  let promoted = 0;
  let scavenges = 0;
  let full = 0;
  let requests = 0;
  for (const line of child.stdout.split('\n')) {
    if (line.includes(' gc=s ')) {
      scavenges += 1;
      promoted += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
    } else if (line.includes(' gc=mc ')) full += 1;
    else if (line.startsWith('requests=')) requests = Number(line.slice('requests='.length));
  }
  return { requests, promotedMb: promoted / 1e6, scavenges, full };
}

async function main(): Promise<void> {
  const { values } = parseCommandLine({
    // `--child`: how measure() starts one way of keeping requests in a process of its own.
    options: { seconds: { type: 'string', default: '8' }, child: { type: 'string' } },
  });
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--seconds: a positive number');
  if (values.child !== undefined) return simulate(values.child as Mode, seconds);
  process.stdout.write(
    `${IN_FLIGHT} requests in flight, ${AWAIT_MS} ms each, ${seconds} s per mode (Node ${process.version})\n\n` +
      '| kept in  | requests | promoted MB | KB per request | young GCs | full GCs |\n' +
      '| -------- | -------: | ----------: | -------------: | --------: | -------: |\n',
  );
  for (const mode of MODES) {
    const { requests, promotedMb, scavenges, full } = measure(mode, seconds);
    const perRequest = requests > 0 ? ((promotedMb * 1000) / requests).toFixed(2) : '-';
    process.stdout.write(
      `| ${mode.padEnd(8)} | ${String(requests).padStart(8)} | ${promotedMb.toFixed(1).padStart(11)} | ` +
        `${perRequest.padStart(14)} | ${String(scavenges).padStart(9)} | ${String(full).padStart(8)} |\n`,
    );
  }
}

runScript('bench:retention', USAGE, main);
