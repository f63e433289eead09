/**
 * Where a gateway's CPU time went: sums the self time of a V8 `.cpuprofile` (from `npm run bench -- --cpu-prof
 * <dir>`) by function and by area (package, Node internals, our files, GC), and the inclusive time of our own
 * functions. With `--report` it counts only the samples inside one measurement's window (the bench records each
 * window on the monotonic clock V8 also stamps its samples with), so start-up and registration are left out.
 *
 * V8 samples on wall-clock intervals: on a loaded machine the process is often descheduled inside the system
 * call that wakes its peer (a socket write), so `writev` and friends collect time the CPU spent elsewhere.
 * Read the split with that in mind, and take CPU per call from the bench's /proc figures, not from here.
 *
 * With `--stretches <ms>` it lists instead the main thread's busy stretches (samples with no idle one between them)
 * of at least that long, and what they ran, by kind: what delays the one call in flight at concurrency 1. A stretch
 * is wall-clock time: one that is mostly `writev` is the process descheduled in a socket write, not work.
 *
 *   node -r ./bench/swc-register.cjs bench/cpuprofile-summary.ts <file.cpuprofile>
 *        [--report bench/results/gateway-….json --path slug|list --concurrency 32] [--top 25] [--stretches 1]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { BenchReport } from './gateway';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  byArea: [string, number][];
  byFunction: [string, number][];
  inclusiveOurs: [string, number][];
}

/** What a script URL belongs to: a package, a Node internal module, one of our files. */
function areaOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/');
    return rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : (rest[0] ?? url);
  }
  if (url.startsWith('node:'))
    return url
      .replace(/^node:(internal\/)?(deps\/)?/, 'node:')
      .split('/')
      .slice(0, 2)
      .join('/');
  const ours = /\/dist\/(.*)$/.exec(url) ?? /\/(src\/.*)$/.exec(url);
  if (ours) return `ours: ${ours[1]!.replace(/\.js$/, '.ts')}`;
  return url;
}

function shortUrl(url: string): string {
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) return url.slice(modules + '/node_modules/'.length);
  const ours = /\/dist\/(.*)$/.exec(url);
  if (ours) return ours[1]!;
  return url.replace(/^file:\/\//, '');
}

export function summarize(profile: CpuProfile, window?: [number, number]): ProfileSummary {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const functionKey = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    return url === ''
      ? functionName || '(anonymous)'
      : `${functionName || '(anonymous)'} ${shortUrl(url)}:${lineNumber + 1}`;
  };
  const byArea = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    if (window && (time < window[0] || time > window[1])) continue;
    // A sample stands for the time until the next one.
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const node = nodes.get(profile.samples[i]!);
    if (!node) continue;
    const { functionName, url } = node.callFrame;
    if (functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    totalMs += ms;
    const area = areaOf(url, functionName);
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    const key = functionKey(node);
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = nodes.get(id);
      if (!frame || !areaOf(frame.callFrame.url, frame.callFrame.functionName).startsWith('ours: ')) continue;
      const frameKey = functionKey(frame);
      if (seen.has(frameKey)) continue;
      seen.add(frameKey);
      inclusive.set(frameKey, (inclusive.get(frameKey) ?? 0) + ms);
    }
  }
  const sorted = (map: Map<string, number>): [string, number][] => [...map].sort((a, b) => b[1] - a[1]);
  return { totalMs, idleMs, byArea: sorted(byArea), byFunction: sorted(byFunction), inclusiveOurs: sorted(inclusive) };
}

/**
 * What a sample ran, for `stretches`: by its innermost frame (a socket write, the collector), else by the innermost
 * frame of the audit trail, the database driver (the audit's inserts above all) or the logger on its stack.
 */
type StretchKind = 'socket write' | 'garbage collector' | 'audit trail and database' | 'access log' | 'other';

export interface BusyStretches {
  /** Busy stretches in the window, and those of at least `minMs`. */
  count: number;
  long: number;
  /** The long stretches' lengths, longest first (ms). */
  lengths: number[];
  /** Their time by kind, and how many of them each kind held for most of their time. */
  byKind: [StretchKind, { ms: number; dominant: number }][];
}

const AUDIT_AND_DATABASE = /\/dist\/(audit|database)\/|\/node_modules\/(pg|pg-protocol|pg-pool)\//;

/**
 * The main thread's busy stretches (consecutive samples, none idle) of at least `minMs` within `window`. At
 * concurrency 1 a call waits for whatever holds the event loop when its request or its upstream's answer comes.
 */
export function stretches(profile: CpuProfile, minMs: number, window?: [number, number]): BusyStretches {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const kinds = new Map<number, StretchKind>();
  const kindOf = (id: number): StretchKind => {
    let kind = kinds.get(id);
    if (kind) return kind;
    const name = nodes.get(id)?.callFrame.functionName;
    kind =
      name === 'writev' || name === 'writeBuffer' || (name?.startsWith('write') && name.endsWith('String'))
        ? 'socket write'
        : name === '(garbage collector)'
          ? 'garbage collector'
          : 'other';
    for (let frame: number | undefined = id; kind === 'other' && frame !== undefined; frame = parent.get(frame)) {
      const url = nodes.get(frame)?.callFrame.url ?? '';
      if (AUDIT_AND_DATABASE.test(url)) kind = 'audit trail and database';
      else if (url.includes('/dist/logging/')) kind = 'access log';
    }
    kinds.set(id, kind);
    return kind;
  };
  const done: { ms: number; byKind: Map<StretchKind, number> }[] = [];
  let current: { ms: number; byKind: Map<StretchKind, number> } | undefined;
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0;
    if (window && (time < window[0] || time > window[1])) continue;
    const id = profile.samples[i]!;
    if (nodes.get(id)?.callFrame.functionName === '(idle)') {
      if (current) done.push(current);
      current = undefined;
      continue;
    }
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    current ??= { ms: 0, byKind: new Map() };
    current.ms += ms;
    const kind = kindOf(id);
    current.byKind.set(kind, (current.byKind.get(kind) ?? 0) + ms);
  }
  if (current) done.push(current);
  const long = done.filter((stretch) => stretch.ms >= minMs);
  const byKind = new Map<StretchKind, { ms: number; dominant: number }>();
  for (const stretch of long) {
    const ranked = [...stretch.byKind].sort((a, b) => b[1] - a[1]);
    for (const [kind, ms] of ranked) {
      const entry = byKind.get(kind) ?? { ms: 0, dominant: 0 };
      entry.ms += ms;
      if (kind === ranked[0]![0]) entry.dominant += 1;
      byKind.set(kind, entry);
    }
  }
  return {
    count: done.length,
    long: long.length,
    lengths: long.map((stretch) => stretch.ms).sort((a, b) => b - a),
    byKind: [...byKind].sort((a, b) => b[1].ms - a[1].ms),
  };
}

export function renderStretches(found: BusyStretches, minMs: number): string {
  const at = (share: number): string => (found.lengths[Math.floor(share * (found.lengths.length - 1))] ?? 0).toFixed(2);
  return [
    `busy stretches: ${found.count}, of at least ${minMs} ms: ${found.long} (longest ${at(0)} ms, median ${at(0.5)} ms)`,
    'their time by kind (and how many each held most of):',
    ...found.byKind.map(
      ([kind, { ms, dominant }]) => `  ${ms.toFixed(1).padStart(8)} ms  ${String(dominant).padStart(5)}  ${kind}`,
    ),
  ].join('\n');
}

export function renderSummary(summary: ProfileSummary, top: number): string {
  const line = ([name, ms]: [string, number]): string =>
    `  ${ms.toFixed(0).padStart(7)} ms ${((ms / summary.totalMs) * 100).toFixed(1).padStart(5)}%  ${name}`;
  return [
    `busy ${summary.totalMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms`,
    'self time by area:',
    ...summary.byArea.slice(0, top).map(line),
    'self time by function:',
    ...summary.byFunction.slice(0, top).map(line),
    'inclusive time of our functions:',
    ...summary.inclusiveOurs.slice(0, top).map(line),
  ].join('\n');
}

if (require.main === module) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      report: { type: 'string' },
      path: { type: 'string', default: 'slug' },
      concurrency: { type: 'string' },
      top: { type: 'string', default: '25' },
      stretches: { type: 'string' },
    },
  });
  const file = positionals[0];
  if (!file) {
    process.stderr.write(
      'usage: cpuprofile-summary <file.cpuprofile> [--report <json> --path slug --concurrency 32] [--stretches <ms>]\n',
    );
    process.exit(2);
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  let window: [number, number] | undefined;
  if (values.report) {
    const report = JSON.parse(readFileSync(values.report, 'utf8')) as BenchReport;
    // `--path list`: the tools/list measurement.
    const lists = report.toolsList ? [{ ...report.toolsList, path: 'list' }] : [];
    const measurement = [...report.calls, ...lists].find(
      (m) =>
        m.path === values.path && (values.concurrency === undefined || m.concurrency === Number(values.concurrency)),
    );
    if (!measurement)
      throw new Error(`no measurement of ${values.path} at concurrency ${values.concurrency} in the report`);
    window = measurement.windowUs;
    process.stdout.write(
      `${measurement.path} c=${measurement.concurrency}: ${measurement.calls} calls, ${measurement.callsPerSecond.toFixed(0)}/s\n`,
    );
  }
  if (values.stretches !== undefined) {
    const minMs = Number(values.stretches);
    process.stdout.write(`${renderStretches(stretches(profile, minMs, window), minMs)}\n`);
  } else {
    process.stdout.write(`${renderSummary(summarize(profile, window), Number(values.top))}\n`);
  }
}
