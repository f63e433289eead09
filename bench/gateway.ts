/**
 * What it costs to put the gateway in front of an MCP server (issue 8): `npm run bench`.
 *
 * Three processes besides this one, so that no two share an event loop: the upstream (SDK `McpServer` with an
 * `echo` tool, and 100 more paths of 50 tools each for the catalog; bench/echo-upstream.ts), the gateway as
 * operators run it (`node bin/mcp-gateway.js serve`, NODE_ENV=production, PostgreSQL, Redis, Entra-shaped tokens
 * checked against a local issuer's JWKS, RBAC on), and a load generator speaking MCP over raw keep-alive HTTP
 * (bench/mcp-load.ts, started once per measurement). This process runs the issuer, registers the servers
 * through the admin API, reads the gateway's and the upstream's CPU time and RSS from /proc (and a local PostgreSQL's
 * CPU, the audit trail's inserts, which share the machine's cores), and reports. The gateway's database is new for
 * each run (on the PostgreSQL of TEST_DATABASE_URL, dropped at the end), so that runs start alike; `--database <url>`
 * (or BENCH_DATABASE_URL) runs on that database as it is and keeps it, its audit table growing from run to run as a
 * production one does.
 *
 * Measured, side by side at each concurrency: tools/call direct to the upstream, through a bare relay (the floor:
 * bench/bare-relay.ts, what relaying alone costs a Node process; its CPU and RSS fill the gateway's columns),
 * through /mcp/{slug}, through /mcp (as `{slug}__echo`) and through the REST bridge; then tools/list on /mcp over
 * the catalog, time from `serve` to ready (PostgreSQL, embedded first start and reopen) and idle RSS. A benchmark,
 * not a test: it asserts nothing about time, and compares with the issue's targets only in what it prints.
 *
 * Its options are USAGE below (`npm run bench -- --help`). The gateway runs from dist/ (`npm run build`, done by
 * `npm ci`). `--cpu-prof <dir>` starts it under `node --cpu-prof`; the JSON then holds each measurement's window on
 * the monotonic clock, which `bench/cpuprofile-summary.ts` uses to sum self time over that window only.
 * `--lease-percent` sets the gateway's RATE_LIMIT_LEASE_PERCENT (its default when absent); `0` charges every call in
 * Redis. `--idle` is how long the gateway is left idle, after start and with the catalog loaded, before its idle
 * RSS (the lowest over that time) is read. `--callgrind` runs the upstream and the gateway under valgrind's
 * callgrind and reports the instructions each executed per call (bench/callgrind.ts), and their ratio, the
 * repeatable form of the CPU target; latencies and CPU are then valgrind's. For instance:
 * `--callgrind --paths slug --concurrency 8 --warmup 30000 --duration 40000 --skip startup,list --catalog-servers 1
 * --idle 0`. `--gateway-flags` adds flags to the gateway's `node`: `--perf-basic-prof` names its compiled JavaScript
 * for `perf record -e cpu-clock -g -p <gateway pid>` (CPU samples, where `--cpu-prof` samples wall-clock time), and
 * V8's heap flags (`--max-semi-space-size=32`) try other sizes. `--gateway-env` (repeatable) sets a variable over the
 * environment of every gateway the bench starts (`gatewayEnvironment`), to price a feature (`--gateway-env
 * RATE_LIMIT_ENABLED=false`) or try a setting (`--gateway-env AUDIT_FLUSH_INTERVAL_MS=1000`); the JSON keeps them
 * with the other options.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { namesLoopback } from '../src/mcp/mcp-edge';
import { imageEnvironment } from '../test/support/dockerfile';
import { entraEnv, LocalEntraIssuer } from '../test/support/entra-issuer';
import { holdFreeLoopbackPort } from '../test/support/loopback';
import { createScratchDatabase, REDIS_URL } from '../test/support/services';
import { Callgrind, type InstructionsPerCall } from './callgrind';
import { parseCommandLine, runScript, UsageError, wholeNumber } from './command-line';
import { chartSvg } from './chart';
import { type LoadResult, type LoadSpec, runLoad } from './mcp-load';
import { waitUntilReady } from './gateway-child';
import { cpuMsBetween, cpuMsOf, cpuMsOfCommand, rssMbOf, samplePeakRss } from './process-stats';
import { withoutCredentials } from './report';

const REPO_ROOT = path.resolve(__dirname, '..');
const SWC_REGISTER = path.join(__dirname, 'swc-register.cjs');
const GATEWAY_BIN = path.join(REPO_ROOT, 'bin', 'mcp-gateway.js');
const READY_TIMEOUT_MS = 60_000;
const USAGE = `Usage: npm run bench -- [--quick] [--concurrency 1,8,32,128] [--paths direct,floor,slug,aggregate,rest]
                        [--duration 10000] [--warmup 2000] [--catalog-servers 100] [--catalog-tools 50]
                        [--list-duration 5000] [--database <url>] [--redis <url>|none] [--out bench/results]
                        [--cpu-prof <dir>] [--callgrind] [--gateway-flags="<node flags>"] [--skip startup,list]
                        [--lease-percent <0-10>] [--idle 40000] [--gateway-env NAME=VALUE ...]
What each option does: the comment at the top of bench/gateway.ts.
`;
const STOP_TIMEOUT_MS = 15_000;
const CALLER_ROLE = 'Bench.Caller';
const NAME_PREFIX = 'io.mcp-gateway.bench';

export const PATHS = ['direct', 'floor', 'slug', 'aggregate', 'rest'] as const;
export type PathName = (typeof PATHS)[number];
const PATH_LABELS: Record<PathName, string> = {
  direct: 'direct (upstream)',
  floor: 'bare relay (floor)',
  slug: '/mcp/{slug}',
  aggregate: '/mcp ({slug}__echo)',
  rest: 'REST bridge',
};

// ---------------------------------------------------------------------------
// The gateway's environment: EVERYTHING ON. Features that add work per call are turned on here, with budgets
// that never trip, so the figures are those of a production deployment.

interface GatewayEnvContext {
  port: number;
  issuer: LocalEntraIssuer;
  dataDir: string;
  /** Undefined: embedded PGlite in dataDir. */
  databaseUrl?: string;
  /** Undefined: the in-process store. */
  redisUrl?: string;
  /** RATE_LIMIT_LEASE_PERCENT; undefined: the gateway's default. */
  leasePercent?: number;
  /** Set over everything else (`--gateway-env`). */
  overrides?: Record<string, string>;
}

/**
 * THE GATEWAY ENVIRONMENT OF THE BENCHMARK. Nothing else reaches the gateway process (no variable of the
 * caller's shell leaks in), except what `--gateway-env` sets over it (`overrides`).
 */
export function gatewayEnvironment(context: GatewayEnvContext): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(context.port),
    DATA_DIR: context.dataDir,
    DATABASE_URL: context.databaseUrl,
    REDIS_URL: context.redisUrl,
    LOG_LEVEL: 'info',
    // Entra ID: RS256 tokens checked against the local issuer's JWKS, two allowed tenants, scopes required.
    ...entraEnv(context.issuer),
    // RBAC: the caller is no admin; its app role reaches the bench servers through their `allowedRoles`.
    AUTH_ADMIN_ROLE: 'Gateway.Admin',
    // The upstream listens on loopback, which the SSRF guard refuses unless told.
    UPSTREAM_ALLOWED_HOSTS: 'loopback',
    // Background loops would reach the servers of other runs; the bench registers and discovers its own.
    DISCOVERY_INTERVAL_MS: '0',
    HEALTH_PROBE_INTERVAL_MS: '0',
    // Rate limits on, every request charged against Redis budgets (caller, tenant) far above the load: in Redis
    // itself, or from the budget leases the gateway takes there (RATE_LIMIT_LEASE_PERCENT, `--lease-percent`).
    RATE_LIMIT_ENABLED: 'true',
    RATE_LIMIT_LEASE_PERCENT: context.leasePercent === undefined ? undefined : String(context.leasePercent),
    RATE_LIMIT_PRINCIPAL: '100000000/60s',
    RATE_LIMIT_TENANT: '100000000/60s',
    RATE_LIMIT_IP: '100000000/60s',
    // The audit trail is always on; arguments are stored redacted, as by default.
    AUDIT_ARGUMENTS: 'redacted',
    // glibc's allocator and Node's options as the container image sets them.
    ...imageRuntimeEnvironment(),
    ...context.overrides,
  };
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/**
 * The `MALLOC_*` variables and `NODE_OPTIONS` the Dockerfile's final stage sets: glibc and V8 read them only when a
 * process starts, so the gateway must be started with them to run as in the image.
 */
function imageRuntimeEnvironment(): Record<string, string> {
  return Object.fromEntries(
    [...imageEnvironment()].filter(([name]) => name.startsWith('MALLOC_') || name === 'NODE_OPTIONS'),
  );
}

// ---------------------------------------------------------------------------
// Options

export interface Options {
  quick: boolean;
  concurrency: number[];
  paths: PathName[];
  durationMs: number;
  warmupMs: number;
  catalogServers: number;
  catalogTools: number;
  listDurationMs: number;
  /** A database kept across runs (`--database`, BENCH_DATABASE_URL); undefined: a scratch database for this run. */
  databaseUrl?: string;
  /** Undefined: the gateway's in-process store. */
  redisUrl?: string;
  out: string;
  cpuProf?: string;
  /** More flags for the gateway's `node` (`--gateway-flags="--perf-basic-prof"`). */
  gatewayFlags: string[];
  /** Count the upstream's and the gateway's instructions per call under callgrind (bench/callgrind.ts). */
  callgrind: boolean;
  skip: string[];
  leasePercent?: number;
  /** How long the gateway is left idle (after start, and with the catalog loaded) before its idle RSS is read. */
  idleMs: number;
  /** Variables set over the benchmark's gateway environment (`--gateway-env LOG_LEVEL=warn`), to price a feature. */
  gatewayEnv: Record<string, string>;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseCommandLine({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      concurrency: { type: 'string', default: '1,8,32,128' },
      paths: { type: 'string', default: PATHS.join(',') },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'catalog-servers': { type: 'string', default: '100' },
      'catalog-tools': { type: 'string', default: '50' },
      'list-duration': { type: 'string' },
      database: { type: 'string' },
      redis: { type: 'string', default: REDIS_URL },
      out: { type: 'string', default: path.join(__dirname, 'results') },
      'cpu-prof': { type: 'string' },
      'gateway-flags': { type: 'string', default: '' },
      callgrind: { type: 'boolean', default: false },
      skip: { type: 'string', default: '' },
      'lease-percent': { type: 'string' },
      idle: { type: 'string' },
      'gateway-env': { type: 'string', multiple: true, default: [] },
    },
  });
  const quick = values.quick;
  const number = (text: string | undefined, fallback: number, name: string, min = 0): number =>
    text === undefined ? fallback : wholeNumber(text, name, min);
  const concurrency = values.concurrency.split(',').map((item) => number(item, 0, 'concurrency', 1));
  const paths = values.paths.split(',').map((item) => {
    if (!(PATHS as readonly string[]).includes(item)) throw new UsageError(`--paths: one of ${PATHS.join(', ')}`);
    return item as PathName;
  });
  const skip = values.skip.split(',').filter(Boolean);
  for (const item of skip) if (item !== 'startup' && item !== 'list') throw new UsageError('--skip: startup, list');
  return {
    quick,
    concurrency,
    paths,
    durationMs: number(values.duration, quick ? 1_000 : 10_000, 'duration', 100),
    warmupMs: number(values.warmup, quick ? 300 : 2_000, 'warmup'),
    catalogServers: number(values['catalog-servers'], 100, 'catalog-servers', 1),
    catalogTools: number(values['catalog-tools'], 50, 'catalog-tools', 1),
    listDurationMs: number(values['list-duration'], quick ? 1_000 : 5_000, 'list-duration', 100),
    databaseUrl: values.database ?? process.env.BENCH_DATABASE_URL,
    redisUrl: values.redis === 'none' ? undefined : values.redis,
    out: path.resolve(values.out),
    cpuProf: values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined,
    gatewayFlags: values['gateway-flags'].split(' ').filter(Boolean),
    callgrind: values.callgrind,
    skip,
    leasePercent:
      values['lease-percent'] === undefined ? undefined : wholeNumber(values['lease-percent'], 'lease-percent', 0, 10),
    idleMs: number(values.idle, quick ? 300 : 40_000, 'idle'),
    gatewayEnv: Object.fromEntries(
      values['gateway-env'].map((item) => {
        const equals = item.indexOf('=');
        if (equals < 1) throw new UsageError('--gateway-env: NAME=VALUE');
        return [item.slice(0, equals), item.slice(equals + 1)];
      }),
    ),
  };
}

// ---------------------------------------------------------------------------
// Processes

interface Child {
  process: ChildProcess;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * `output`: `pipe` (the caller reads stdout) or a file that takes stdout (the gateway's log lines). `wrapper`: a
 * command that runs `node` (valgrind, for `--callgrind`).
 */
function startChild(
  args: string[],
  env: NodeJS.ProcessEnv,
  output: 'pipe' | { logFile: string },
  wrapper: string[] = [],
): Child {
  const [command = process.execPath, ...wrapperArgs] = wrapper;
  const child = spawn(command, wrapper.length > 0 ? [...wrapperArgs, process.execPath, ...args] : args, {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (output !== 'pipe') child.stdout?.pipe(createWriteStream(output.logFile, { flags: 'a' }));
  child.stderr?.pipe(process.stderr);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    exited,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The JSON lines a child writes on stdout, in order. */
function jsonLines(child: ChildProcess): AsyncIterable<Record<string, unknown>> {
  const lines = createInterface({ input: child.stdout! });
  return (async function* () {
    for await (const line of lines) {
      if (line.startsWith('{')) yield JSON.parse(line) as Record<string, unknown>;
    }
  })();
}

interface Listening extends Child {
  url: string;
}

/** The environment of the bench's own scripts (upstream, bare relay, load generator). */
const SCRIPT_ENV = { PATH: process.env.PATH ?? '', NODE_ENV: 'production' };

/** Starts a script of bench/ that prints `{"port":…}` once it listens. */
async function startListening(script: string, args: string[], what: string, wrapper?: string[]): Promise<Listening> {
  const child = startChild(['-r', SWC_REGISTER, path.join(__dirname, script), ...args], SCRIPT_ENV, 'pipe', wrapper);
  for await (const line of jsonLines(child.process)) {
    if (typeof line.port === 'number') {
      child.process.stdout?.resume();
      return { ...child, url: `http://127.0.0.1:${line.port}` };
    }
  }
  throw new Error(`the ${what} exited before listening (its output is above)`);
}

function startUpstream(options: Options, wrapper?: string[]): Promise<Listening> {
  const catalog = [
    '--catalog-servers',
    String(options.catalogServers),
    '--catalog-tools',
    String(options.catalogTools),
  ];
  return startListening('echo-upstream.ts', catalog, 'upstream', wrapper);
}

interface Gateway extends Child {
  url: string;
  /** From spawn to the first 200 of /health/ready. */
  readyMs: number;
}

async function startGateway(
  env: Record<string, string>,
  nodeFlags: string[] = [],
  wrapper: string[] = [],
): Promise<Gateway> {
  const started = performance.now();
  const child = startChild([...nodeFlags, GATEWAY_BIN, 'serve'], env, { logFile: logFileOf(env) }, wrapper);
  const url = `http://127.0.0.1:${env.PORT}`;
  // Under valgrind start-up takes about ten times as long.
  const timeoutMs = wrapper.length > 0 ? READY_TIMEOUT_MS * 10 : READY_TIMEOUT_MS;
  try {
    await waitUntilReady(url, child.exited, { timeoutMs, pollMs: 10 });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return { ...child, url, readyMs: performance.now() - started };
}

/** The gateway's log (pino lines on its stdout): in its DATA_DIR, kept only when the bench fails. */
function logFileOf(env: Record<string, string>): string {
  return path.join(env.DATA_DIR ?? os.tmpdir(), 'gateway.log');
}

async function runMigrate(env: Record<string, string>): Promise<void> {
  const child = startChild([GATEWAY_BIN, 'migrate'], env, { logFile: logFileOf(env) });
  const code = await child.exited;
  if (code !== 0) throw new Error(`mcp-gateway migrate exited with ${code}`);
}

// ---------------------------------------------------------------------------
// The admin API

async function api(base: string, method: string, target: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${base}/api/v1${target}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${target}: HTTP ${response.status} ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/** Servers an earlier run left behind (killed before its clean-up): they would swell the catalog. */
async function removeLeftovers(base: string): Promise<number> {
  let removed = 0;
  for (;;) {
    const page = (await api(base, 'GET', `/servers?limit=100&q=${encodeURIComponent(NAME_PREFIX)}`)) as {
      servers: { id: string; name: string }[];
    };
    const ours = page.servers.filter((server) => server.name.startsWith(`${NAME_PREFIX}/`));
    if (ours.length === 0) return removed;
    for (const server of ours) await api(base, 'DELETE', `/servers/${server.id}`);
    removed += ours.length;
  }
}

async function inBatches<T, R>(items: readonly T[], size: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let start = 0; start < items.length; start += size) {
    results.push(...(await Promise.all(items.slice(start, start + size).map(work))));
  }
  return results;
}

// ---------------------------------------------------------------------------
// Measuring

export interface CallMeasurement extends LoadResult {
  path: PathName;
  concurrency: number;
  gatewayCpuMsPerCall: number | null;
  upstreamCpuMsPerCall: number | null;
  /**
   * A local PostgreSQL's CPU (all its processes) per call, on the paths through the gateway: the audit trail's
   * inserts, which share the machine's cores with the rest. Null when the database is not on this machine.
   */
  databaseCpuMsPerCall: number | null;
  gatewayPeakRssMb: number | null;
  loadAverage: number[];
  /** The measured window on the monotonic clock (µs), for bench/cpuprofile-summary.ts. */
  windowUs: [number, number];
  /**
   * With `--callgrind`: the upstream's, and the gateway's on its paths (times and CPU are then valgrind's, not the
   * processes' own).
   */
  instructionsPerCall?: PathInstructions;
}

interface Watched {
  gatewayPid?: number;
  upstreamPid?: number;
  /** The command name of the database's processes, when it runs on this machine. */
  databaseCommand?: string;
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function load(
  spec: LoadSpec,
  watched: Watched,
  /** Called when the warm-up ends and the measured calls begin. */
  onMeasuring?: () => void,
): Promise<
  LoadResult & {
    gatewayCpuMs: number | null;
    upstreamCpuMs: number | null;
    databaseCpuMs: number | null;
    gatewayPeakRssMb: number | null;
    windowUs: [number, number];
  }
> {
  const child = startChild(
    ['-r', SWC_REGISTER, path.join(__dirname, 'mcp-load.ts'), JSON.stringify(spec)],
    SCRIPT_ENV,
    'pipe',
  );
  const cpuNow = (): [number | undefined, number | undefined, Map<number, number> | undefined] => [
    cpuMsOf(watched.gatewayPid),
    cpuMsOf(watched.upstreamPid),
    watched.databaseCommand === undefined ? undefined : cpuMsOfCommand(watched.databaseCommand),
  ];
  let before: ReturnType<typeof cpuNow> = [undefined, undefined, undefined];
  let rss: ReturnType<typeof samplePeakRss> | undefined;
  let from = 0;
  try {
    for await (const line of jsonLines(child.process)) {
      if (line.event === 'measuring') {
        onMeasuring?.();
        from = monotonicUs();
        before = cpuNow();
        rss = samplePeakRss(watched.gatewayPid);
      } else if (line.event === 'done') {
        const to = monotonicUs();
        const after = cpuNow();
        const delta = (a: number | undefined, b: number | undefined): number | null =>
          a === undefined || b === undefined ? null : b - a;
        return {
          ...(line.result as LoadResult),
          gatewayCpuMs: delta(before[0], after[0]),
          upstreamCpuMs: delta(before[1], after[1]),
          databaseCpuMs: before[2] && after[2] ? cpuMsBetween(before[2], after[2]) : null,
          gatewayPeakRssMb: rss?.stop() ?? null,
          windowUs: [from, to],
        };
      } else if (line.event === 'failed') {
        throw new Error(`load generator: ${String(line.message)}`);
      }
    }
    throw new Error('the load generator exited without a result (its output is above)');
  } finally {
    rss?.stop();
    await child.stop();
  }
}

interface Setup {
  upstream: Listening;
  /** bench/bare-relay.ts in front of the upstream, when the floor path is measured. */
  floor?: Listening;
  gateway: Gateway;
  token: string;
  echoSlug: string;
}

function specFor(pathName: PathName, setup: Setup, concurrency: number, options: Options): LoadSpec {
  const base = {
    method: 'tools/call' as const,
    concurrency,
    warmupMs: options.warmupMs,
    durationMs: options.durationMs,
  };
  const { gateway, token, echoSlug } = setup;
  switch (pathName) {
    case 'direct':
      return { ...base, protocol: 'mcp', url: `${setup.upstream.url}/mcp`, tool: 'echo' };
    case 'floor':
      return { ...base, protocol: 'mcp', url: `${setup.floor?.url}/mcp`, tool: 'echo' };
    case 'slug':
      return { ...base, protocol: 'mcp', url: `${gateway.url}/mcp/${echoSlug}`, tool: 'echo', token };
    case 'aggregate':
      return { ...base, protocol: 'mcp', url: `${gateway.url}/mcp`, tool: `${echoSlug}__echo`, token };
    case 'rest':
      return { ...base, protocol: 'rest', url: `${gateway.url}/mcp/${echoSlug}/tools/echo`, token };
  }
}

/** How long a path runs uncounted under callgrind first, for the JITs to compile what the calls run. */
const CALLGRIND_WARM_MS = 30_000;

/** Instructions per call of the processes a path's calls go through. */
interface PathInstructions {
  gateway?: InstructionsPerCall;
  upstream: InstructionsPerCall;
}

/** A process running under callgrind. */
interface Counted {
  callgrind: Callgrind;
  pid: number;
}

/**
 * A path measured with its processes under callgrind (the upstream always; the gateway on its own paths):
 * uncounted for CALLGRIND_WARM_MS, then counted through the spec's own warm-up (the JIT settles again once
 * instrumented), and the instructions of its measured calls read.
 */
async function countInstructions(
  spec: LoadSpec,
  watched: Watched,
  counted: { gateway?: Counted; upstream: Counted },
): Promise<
  Awaited<ReturnType<typeof load>> & {
    instructionsPerCall: PathInstructions;
  }
> {
  const processes = [counted.upstream, ...(counted.gateway ? [counted.gateway] : [])];
  await load({ ...spec, warmupMs: 0, durationMs: CALLGRIND_WARM_MS }, watched);
  for (const { callgrind, pid } of processes) callgrind.instrument(pid, true);
  try {
    const result = await load(spec, watched, () => {
      for (const { callgrind, pid } of processes) callgrind.zero(pid);
    });
    const perCallOf = ({ callgrind, pid }: Counted): InstructionsPerCall => {
      const { main, all } = callgrind.counts(pid);
      return { mainThread: main / result.calls, allThreads: all / result.calls };
    };
    const upstream = perCallOf(counted.upstream);
    const gateway = counted.gateway ? perCallOf(counted.gateway) : undefined;
    return { ...result, instructionsPerCall: { upstream, ...(gateway ? { gateway } : {}) } };
  } finally {
    for (const { callgrind, pid } of processes) callgrind.instrument(pid, false);
  }
}

/** Main-thread instructions per call (all threads in brackets), and the gateway's over the upstream's. */
function describeInstructions({ gateway, upstream }: PathInstructions): string {
  const count = ({ mainThread, allThreads }: InstructionsPerCall): string =>
    `${Math.round(mainThread / 1000)}k (${Math.round(allThreads / 1000)}k)`;
  const upstreamPart = `upstream ${count(upstream)} instructions per call`;
  if (!gateway) return upstreamPart;
  return (
    `gateway ${count(gateway)}, ${upstreamPart}: ` +
    `gateway ÷ upstream ${(gateway.mainThread / upstream.mainThread).toFixed(2)}`
  );
}

function perCall(ms: number | null, calls: number): number | null {
  return ms === null || calls === 0 ? null : ms / calls;
}

// ---------------------------------------------------------------------------
// Report

export interface AddedLatency {
  path: PathName;
  concurrency: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export interface StartupFigures {
  postgres: { readyMs: number; idleRssMb: number | null };
  embeddedFirst: { readyMs: number; idleRssMb: number | null };
  embeddedReopen: { readyMs: number; idleRssMb: number | null };
}

export interface BenchReport {
  benchmark: 'gateway';
  finishedAt: string;
  command: string;
  options: Record<string, unknown>;
  machine: Record<string, unknown>;
  gatewayEnvironment: string[];
  calls: CallMeasurement[];
  addedLatency: AddedLatency[];
  toolsList: (LoadResult & { servers: number; tools: number; concurrency: number; windowUs: [number, number] }) | null;
  startup: StartupFigures | null;
  /** The lowest RSS over `idleMs` of idleness (V8 and malloc give memory back only after a while idle). */
  idleRssMb: { afterStart: number | null; withCatalog: number | null };
  /** RSS 2 s into that idleness: what start-up, or loading the catalog, left before it was given back. */
  settlingRssMb: { afterStart: number | null; withCatalog: number | null };
  targets: { target: string; measured: string; met: boolean | null }[];
}

const ms = (value: number): string => (Number.isFinite(value) ? value.toFixed(2) : '-');
const maybe = (value: number | null | undefined, digits = 3): string =>
  value === null || value === undefined ? '-' : value.toFixed(digits);

function table(header: string[], rows: string[][], textColumns = 1): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const align = (text: string, column: number): string =>
    column < textColumns ? text.padEnd(widths[column] ?? 0) : text.padStart(widths[column] ?? 0);
  const line = (cells: string[]): string => `| ${cells.map(align).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => (column < textColumns ? `:${'-'.repeat(width + 1)}` : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export function renderReport(report: BenchReport): string {
  const out: string[] = [];
  out.push(
    table(
      [
        'path',
        'conc',
        'calls/s',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'errors',
        'gw cpu ms/call',
        'up cpu ms/call',
        'db cpu ms/call',
        'gw peak RSS MB',
        'load avg',
      ],
      report.calls.map((m) => [
        PATH_LABELS[m.path],
        String(m.concurrency),
        m.callsPerSecond.toFixed(0),
        ms(m.p50),
        ms(m.p90),
        ms(m.p99),
        ms(m.max),
        String(m.errors + m.warmupErrors),
        maybe(m.gatewayCpuMsPerCall),
        maybe(m.upstreamCpuMsPerCall),
        maybe(m.databaseCpuMsPerCall),
        maybe(m.gatewayPeakRssMb, 0),
        m.loadAverage.map((l) => l.toFixed(2)).join(' '),
      ]),
      2,
    ),
  );
  out.push('', 'gateway-added latency (path minus direct, same concurrency):');
  out.push(
    table(
      ['path', 'conc', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms'],
      report.addedLatency.map((a) => [
        PATH_LABELS[a.path],
        String(a.concurrency),
        ms(a.p50),
        ms(a.p90),
        ms(a.p99),
        ms(a.max),
      ]),
      2,
    ),
  );
  if (report.toolsList) {
    const l = report.toolsList;
    out.push(
      '',
      `tools/list on /mcp (${l.servers} servers × ${l.tools / l.servers} tools = ${l.tools}, concurrency ${l.concurrency}): ` +
        `${l.calls} lists, p50 ${ms(l.p50)} ms, p90 ${ms(l.p90)} ms, p99 ${ms(l.p99)} ms, max ${ms(l.max)} ms, ` +
        `${l.callsPerSecond.toFixed(0)}/s, errors ${l.errors + l.warmupErrors}`,
    );
  }
  if (report.startup) {
    const s = report.startup;
    out.push(
      '',
      `serve → ready: PostgreSQL ${s.postgres.readyMs.toFixed(0)} ms (idle RSS ${maybe(s.postgres.idleRssMb, 0)} MB); ` +
        `embedded first start ${s.embeddedFirst.readyMs.toFixed(0)} ms (idle RSS ${maybe(s.embeddedFirst.idleRssMb, 0)} MB); ` +
        `embedded reopen ${s.embeddedReopen.readyMs.toFixed(0)} ms (idle RSS ${maybe(s.embeddedReopen.idleRssMb, 0)} MB)`,
    );
  }
  out.push(
    `idle RSS of the measured gateway (lowest over ${(Number(report.options.idleMs) / 1000).toFixed(1)} s idle; 2 s in): ` +
      `${maybe(report.idleRssMb.afterStart, 0)} MB (${maybe(report.settlingRssMb.afterStart, 0)}) after start, ` +
      `${maybe(report.idleRssMb.withCatalog, 0)} MB (${maybe(report.settlingRssMb.withCatalog, 0)}) with the catalog loaded`,
  );
  out.push('', 'targets (issue 8; not asserted):');
  out.push(
    table(
      ['target', 'measured', 'met'],
      report.targets.map((t) => [t.target, t.measured, t.met === null ? '-' : t.met ? 'yes' : 'NO']),
      2,
    ),
  );
  return out.join('\n');
}

function addedLatency(calls: readonly CallMeasurement[]): AddedLatency[] {
  const added: AddedLatency[] = [];
  for (const m of calls) {
    if (m.path === 'direct') continue;
    const direct = calls.find((d) => d.path === 'direct' && d.concurrency === m.concurrency);
    if (!direct) continue;
    added.push({
      path: m.path,
      concurrency: m.concurrency,
      p50: m.p50 - direct.p50,
      p90: m.p90 - direct.p90,
      p99: m.p99 - direct.p99,
      max: m.max - direct.max,
    });
  }
  return added;
}

function targetsOf(report: Omit<BenchReport, 'targets'>): BenchReport['targets'] {
  const targets: BenchReport['targets'] = [];
  const find = (pathName: PathName, concurrency: number): CallMeasurement | undefined =>
    report.calls.find((m) => m.path === pathName && m.concurrency === concurrency);
  const added1 = report.addedLatency.find((a) => a.path === 'slug' && a.concurrency === 1);
  if (added1) {
    targets.push({
      target: 'added p50 at c=1 (/mcp/{slug}) ≤ 0.5 ms',
      measured: `${ms(added1.p50)} ms`,
      met: added1.p50 <= 0.5,
    });
    targets.push({
      target: 'added p99 at c=1 (/mcp/{slug}) ≤ 2 ms',
      measured: `${ms(added1.p99)} ms`,
      met: added1.p99 <= 2,
    });
  }
  const slug32 = find('slug', 32);
  const direct32 = find('direct', 32);
  if (slug32?.gatewayCpuMsPerCall != null && direct32?.upstreamCpuMsPerCall != null) {
    targets.push({
      target: 'gateway CPU/call ≤ upstream CPU/call (c=32)',
      measured: `${maybe(slug32.gatewayCpuMsPerCall)} vs ${maybe(direct32.upstreamCpuMsPerCall)} ms`,
      met: slug32.gatewayCpuMsPerCall <= direct32.upstreamCpuMsPerCall,
    });
  }
  const floor32 = find('floor', 32);
  if (slug32?.gatewayCpuMsPerCall != null && floor32?.gatewayCpuMsPerCall != null && direct32?.upstreamCpuMsPerCall) {
    // Not a target: how much of the gateway's CPU relaying alone would cost, in upstreams' worth.
    const upstream = direct32.upstreamCpuMsPerCall;
    targets.push({
      target: 'CPU/call ÷ upstream CPU/call (c=32): gateway, bare relay',
      measured: [slug32.gatewayCpuMsPerCall, floor32.gatewayCpuMsPerCall]
        .map((ms) => (ms / upstream).toFixed(2))
        .join(', '),
      met: null,
    });
  }
  if (slug32?.gatewayCpuMsPerCall != null && slug32.upstreamCpuMsPerCall) {
    // Not a target either: against what the upstream spent on the very calls the gateway relayed, at the rate the
    // gateway passed them on (about half the direct path's, which lets the upstream batch less).
    targets.push({
      target: 'gateway CPU/call ÷ upstream CPU/call, same cell (c=32)',
      measured: (slug32.gatewayCpuMsPerCall / slug32.upstreamCpuMsPerCall).toFixed(2),
      met: null,
    });
  }
  if (slug32 && direct32) {
    targets.push({
      target: '/mcp/{slug} c=32 ≥ ½ direct throughput',
      measured: `${slug32.callsPerSecond.toFixed(0)} vs ${direct32.callsPerSecond.toFixed(0)}/s`,
      met: slug32.callsPerSecond * 2 >= direct32.callsPerSecond,
    });
  }
  if (slug32) {
    targets.push({
      target: '/mcp/{slug} c=32 ≥ 1,000 calls/s, 0 errors',
      measured: `${slug32.callsPerSecond.toFixed(0)}/s, ${slug32.errors} errors`,
      met: slug32.callsPerSecond >= 1000 && slug32.errors === 0,
    });
  }
  if (report.toolsList) {
    targets.push({
      target: `tools/list (${report.toolsList.tools} tools) p50 ≤ 5 ms`,
      measured: `${ms(report.toolsList.p50)} ms`,
      met: report.toolsList.p50 <= 5,
    });
  }
  if (report.idleRssMb.withCatalog !== null) {
    targets.push({
      target: 'idle RSS ≤ 150 MB',
      measured: `${maybe(report.idleRssMb.withCatalog, 0)} MB`,
      met: report.idleRssMb.withCatalog <= 150,
    });
  }
  const peak = Math.max(...report.calls.filter((m) => m.concurrency === 128).map((m) => m.gatewayPeakRssMb ?? 0));
  if (peak > 0)
    targets.push({ target: 'RSS ≤ 300 MB under c=128', measured: `${peak.toFixed(0)} MB`, met: peak <= 300 });
  return targets;
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(', ');
}

// ---------------------------------------------------------------------------

/** Runs `work` the first time only; later calls get the same promise. */
function once(work: () => Promise<void>): () => Promise<void> {
  let done: Promise<void> | undefined;
  return () => (done ??= work());
}

const SETTLING_MS = 2_000;

/**
 * RSS of an idle process, sampled every second over `idleMs`: the lowest sample, and the one 2 s in (or the first,
 * for a shorter window). V8 gives back its young generation and free pages only after a while without work
 * (20-30 s after loading the catalog, on the bench's 2-CPU VM).
 */
async function idleRss(
  pid: number | undefined,
  idleMs: number,
): Promise<{ lowest: number | null; settling: number | null }> {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const started = performance.now();
  let lowest: number | undefined;
  let settling: number | undefined;
  for (;;) {
    const elapsed = performance.now() - started;
    await sleep(Math.min(1_000, Math.max(0, idleMs - elapsed)));
    const rss = rssMbOf(pid);
    if (rss !== undefined) {
      lowest = Math.min(lowest ?? rss, rss);
      if (settling === undefined && performance.now() - started >= Math.min(SETTLING_MS, idleMs)) settling = rss;
    }
    if (performance.now() - started >= idleMs) return { lowest: lowest ?? null, settling: settling ?? null };
  }
}

/** Time to ready on the embedded database: a fresh DATA_DIR (initdb + migrations), then the same one again. */
async function measureEmbedded(
  issuer: LocalEntraIssuer,
  settleMs: number,
  overrides: Record<string, string>,
): Promise<Omit<StartupFigures, 'postgres'>> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mcp-gateway-bench-embedded-'));
  try {
    const figures: { readyMs: number; idleRssMb: number | null }[] = [];
    for (let start = 0; start < 2; start++) {
      // Held until the gateway listens on it, so that no other process takes it first.
      const port = await holdFreeLoopbackPort();
      const env = gatewayEnvironment({ port: port.port, issuer, dataDir, overrides });
      const gateway = await startGateway(env).finally(() => port.release());
      try {
        figures.push({ readyMs: gateway.readyMs, idleRssMb: (await idleRss(gateway.process.pid, settleMs)).settling });
      } finally {
        await gateway.stop();
      }
    }
    return { embeddedFirst: figures[0]!, embeddedReopen: figures[1]! };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function runBench(options: Options, argv: string[]): Promise<{ report: BenchReport; files: string[] }> {
  if (!existsSync(path.join(REPO_ROOT, 'dist', 'main.js'))) {
    throw new UsageError('dist/main.js is missing: run `npm run build` first');
  }
  const cleanups: (() => Promise<void>)[] = [];
  const cleanUp = async (): Promise<void> => {
    for (const step of cleanups.reverse()) {
      await step().catch((error: unknown) => process.stderr.write(`cleanup failed: ${String(error)}\n`));
    }
    cleanups.length = 0;
  };
  const onSigint = (): void => {
    process.stderr.write('interrupted: stopping the processes and removing the registered servers\n');
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSigint);
  try {
    const loadBefore = os.loadavg();
    say(
      `mcp-gateway bench${options.quick ? ' (quick)' : ''}: load average ${loadAverage()} on ${os.cpus().length} CPUs`,
    );
    // Every run on an empty database of its own, so that runs start alike; `--database` keeps one across runs.
    let databaseUrl = options.databaseUrl;
    if (databaseUrl === undefined) {
      const scratch = await createScratchDatabase();
      cleanups.push(scratch.drop);
      databaseUrl = scratch.url;
      const { host, pathname } = new URL(databaseUrl);
      say(`database: ${pathname.slice(1)} on ${host}, new for this run and dropped at its end`);
    }
    const issuer = await LocalEntraIssuer.start();
    cleanups.push(() => issuer.stop());
    const token = await issuer.token({ roles: [CALLER_ROLE] });
    const callgrindDirectory = options.callgrind
      ? mkdtempSync(path.join(os.tmpdir(), 'mcp-gateway-callgrind-'))
      : undefined;
    if (callgrindDirectory) say(`callgrind: the profiles go to ${callgrindDirectory}`);
    const upstreamCallgrind = callgrindDirectory ? new Callgrind(callgrindDirectory, SCRIPT_ENV) : undefined;
    const upstream = await startUpstream(options, upstreamCallgrind?.wrapper());
    cleanups.push(() => upstream.stop());

    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mcp-gateway-bench-'));
    let succeeded = false;
    cleanups.push(() => {
      if (succeeded) rmSync(dataDir, { recursive: true, force: true });
      else process.stderr.write(`the gateway's log: ${path.join(dataDir, 'gateway.log')}\n`);
      return Promise.resolve();
    });
    // Held until the gateway listens on it, so that no other process takes it first.
    const port = await holdFreeLoopbackPort();
    cleanups.push(() => Promise.resolve(port.release()));
    const env = gatewayEnvironment({
      port: port.port,
      issuer,
      dataDir,
      databaseUrl,
      redisUrl: options.redisUrl,
      leasePercent: options.leasePercent,
      overrides: options.gatewayEnv,
    });
    // Migrated first, so that `serve` is timed as a restart is: schema up to date.
    await runMigrate(env);
    if (options.cpuProf) mkdirSync(options.cpuProf, { recursive: true });
    const nodeFlags = [
      ...(options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${options.cpuProf}`] : []),
      ...options.gatewayFlags,
    ];
    const gatewayCallgrind = callgrindDirectory ? new Callgrind(callgrindDirectory, env) : undefined;
    const gateway = await startGateway(env, nodeFlags, gatewayCallgrind?.wrapper());
    port.release();
    cleanups.push(() => gateway.stop());
    const watched: Watched = {
      gatewayPid: gateway.process.pid,
      upstreamPid: upstream.process.pid,
      // A database on this machine: its processes can be read.
      ...(namesLoopback(databaseUrl) ? { databaseCommand: 'postgres' } : {}),
    };
    const afterStart = await idleRss(gateway.process.pid, options.idleMs);
    say(
      `gateway ready in ${gateway.readyMs.toFixed(0)} ms (PostgreSQL${options.redisUrl ? ', Redis' : ''}); upstream ${upstream.url}`,
    );
    const overrides = Object.entries(options.gatewayEnv).map(([name, value]) => `${name}=${value}`);
    if (overrides.length > 0) say(`set over the gateway's environment: ${overrides.join(', ')}`);

    // The servers: one echo server, and the catalog. Names unique per run; removed at the end.
    const left = await removeLeftovers(gateway.url);
    if (left > 0) say(`removed ${left} servers an earlier run left behind`);
    const run = randomBytes(3).toString('hex');
    const echoSlug = `bench-echo-${run}`;
    const unregister = once(() => removeLeftovers(gateway.url).then(() => undefined));
    cleanups.push(unregister);
    await api(gateway.url, 'POST', '/servers', {
      name: `${NAME_PREFIX}/echo-${run}`,
      slug: echoSlug,
      url: `${upstream.url}/mcp`,
      allowedRoles: [CALLER_ROLE],
      toolRules: { allow: ['echo'] },
    });
    const catalogStarted = performance.now();
    // Two at a time: more concurrent registrations (each followed by its discovery) exhaust the gateway's
    // Prisma transaction wait on a loaded machine (P2028, answered 500).
    await inBatches(
      Array.from({ length: options.catalogServers }, (_, index) => index),
      2,
      (index) =>
        api(gateway.url, 'POST', '/servers', {
          name: `${NAME_PREFIX}/catalog-${run}-${index}`,
          slug: `bench-cat-${run}-${index}`,
          url: `${upstream.url}/catalog/${index}/mcp`,
          allowedRoles: [CALLER_ROLE],
        }),
    );
    const expectTools = options.catalogServers * options.catalogTools + 1;
    await waitForCatalog(gateway.url, token, expectTools);
    say(
      `registered 1 + ${options.catalogServers} servers (${expectTools} tools) in ` +
        `${((performance.now() - catalogStarted) / 1000).toFixed(1)} s`,
    );
    const withCatalog = await idleRss(gateway.process.pid, options.idleMs);
    const floor = options.paths.includes('floor')
      ? await startListening('bare-relay.ts', ['--upstream', upstream.url], 'bare relay')
      : undefined;
    if (floor) cleanups.push(() => floor.stop());
    const setup: Setup = { upstream, floor, gateway, token, echoSlug };

    const calls: CallMeasurement[] = [];
    for (const concurrency of options.concurrency) {
      // Paths side by side at each concurrency, so that they see the same machine load.
      for (const pathName of options.paths) {
        const loadAtStart = os.loadavg();
        // The floor's CPU and RSS are the bare relay's, in the gateway's columns.
        const relay = pathName === 'floor' ? { ...watched, gatewayPid: floor?.process.pid } : watched;
        const spec = specFor(pathName, setup, concurrency, options);
        const throughGateway = pathName !== 'direct' && pathName !== 'floor';
        const { instructionsPerCall, ...result } =
          upstreamCallgrind && gatewayCallgrind
            ? await countInstructions(spec, relay, {
                upstream: { callgrind: upstreamCallgrind, pid: upstream.process.pid! },
                ...(throughGateway ? { gateway: { callgrind: gatewayCallgrind, pid: gateway.process.pid! } } : {}),
              })
            : { ...(await load(spec, relay)), instructionsPerCall: undefined };
        const { gatewayCpuMs, upstreamCpuMs, databaseCpuMs, ...rest } = result;
        const measurement: CallMeasurement = {
          ...rest,
          ...(instructionsPerCall ? { instructionsPerCall } : {}),
          path: pathName,
          concurrency,
          gatewayCpuMsPerCall: pathName === 'direct' ? null : perCall(gatewayCpuMs, result.calls),
          upstreamCpuMsPerCall: perCall(upstreamCpuMs, result.calls),
          // Under callgrind the gateway is slowed down far more than the database it writes to: no comparable figure.
          databaseCpuMsPerCall: throughGateway && !instructionsPerCall ? perCall(databaseCpuMs, result.calls) : null,
          loadAverage: loadAtStart,
        };
        calls.push(measurement);
        say(
          `  ${PATH_LABELS[pathName].padEnd(20)} c=${String(concurrency).padEnd(4)} ${result.callsPerSecond.toFixed(0).padStart(6)}/s ` +
            `p50 ${ms(result.p50)} p99 ${ms(result.p99)} ms, errors ${result.errors + result.warmupErrors}` +
            (result.errorSamples.length ? ` (${result.errorSamples[0]})` : '') +
            (instructionsPerCall ? `; ${describeInstructions(instructionsPerCall)}` : ''),
        );
      }
    }

    let toolsList: BenchReport['toolsList'] = null;
    if (!options.skip.includes('list')) {
      const listConcurrency = 1;
      const result = await load(
        {
          protocol: 'mcp',
          method: 'tools/list',
          url: `${gateway.url}/mcp`,
          token,
          expectTools,
          concurrency: listConcurrency,
          warmupMs: options.warmupMs,
          durationMs: options.listDurationMs,
        },
        watched,
      );
      const { gatewayCpuMs: _g, upstreamCpuMs: _u, databaseCpuMs: _d, gatewayPeakRssMb: _r, ...rest } = result;
      toolsList = { ...rest, servers: options.catalogServers, tools: expectTools - 1, concurrency: listConcurrency };
      say(`  tools/list on /mcp: p50 ${ms(result.p50)} ms, errors ${result.errors + result.warmupErrors}`);
    }

    // The embedded gateways that follow get the machine to themselves (the issuer stays: they trust it too).
    await unregister();
    await gateway.stop();
    await upstream.stop();
    let startup: StartupFigures | null = null;
    if (!options.skip.includes('startup')) {
      const embedded = await measureEmbedded(issuer, options.quick ? 300 : SETTLING_MS, options.gatewayEnv);
      startup = { postgres: { readyMs: gateway.readyMs, idleRssMb: afterStart.settling }, ...embedded };
    }

    const finished = new Date();
    const partial = {
      benchmark: 'gateway' as const,
      finishedAt: finished.toISOString(),
      command: `npm run bench -- ${argv.join(' ')}`.trim(),
      options: {
        ...options,
        databaseUrl: withoutCredentials(databaseUrl),
        scratchDatabase: options.databaseUrl === undefined,
        redisUrl: withoutCredentials(options.redisUrl) ?? 'none (in-process store)',
      },
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGb: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
        loadAverageBefore: loadBefore,
        loadAverageAfter: os.loadavg(),
      },
      gatewayEnvironment: Object.keys(env).filter((key) => key !== 'PATH' && key !== 'HOME'),
      calls,
      addedLatency: addedLatency(calls),
      toolsList,
      startup,
      idleRssMb: { afterStart: afterStart.lowest, withCatalog: withCatalog.lowest },
      settlingRssMb: { afterStart: afterStart.settling, withCatalog: withCatalog.settling },
    };
    const report: BenchReport = { ...partial, targets: targetsOf(partial) };

    say('');
    say(renderReport(report));
    say('');
    say(`load average before ${loadBefore.map((l) => l.toFixed(2)).join(', ')}; after ${loadAverage()}`);

    mkdirSync(options.out, { recursive: true });
    const stem = path.join(options.out, `gateway-${finished.toISOString().replace(/[:.]/g, '-')}`);
    writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(`${stem}.svg`, chartSvg(report));
    const files = [`${stem}.json`, `${stem}.svg`];
    succeeded = true;
    say(`results: ${files.map((file) => path.relative(process.cwd(), file)).join(', ')}`);
    return { report, files };
  } finally {
    await cleanUp();
    process.off('SIGINT', onSigint);
  }
}

/** Discovery runs after each registration: waits until /mcp lists every tool of every server. */
async function waitForCatalog(base: string, token: string, expected: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      await runLoad({
        protocol: 'mcp',
        method: 'tools/list',
        url: `${base}/mcp`,
        token,
        expectTools: expected,
        concurrency: 1,
        warmupMs: 0,
        durationMs: 1,
      }).then((result) => {
        if (result.errors + result.warmupErrors > 0) throw new Error(result.errorSamples[0]);
      });
      return;
    } catch (error) {
      last = String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the catalog did not reach ${expected} tools: ${last}`);
}

if (require.main === module) {
  const argv = process.argv.slice(2);
  runScript('bench', USAGE, async () => {
    await runBench(parseOptions(argv), argv);
  });
}
