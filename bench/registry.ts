/**
 * Registry read paths at scale (issue 3): 10,000 registered servers with 20 tools each, then the latency of the
 * registry list and search, one server, tool search and the official registry facade, measured over HTTP.
 *
 * A benchmark, not a test: it prints figures and asserts nothing about time. It seeds a scratch PostgreSQL
 * database straight through `pg` (multi-row INSERTs, rows shaped as the registry and discovery write them),
 * starts the real gateway as a child process (so the load generator's CPU is not the gateway's), measures each
 * route sequentially and at a fixed concurrency over keep-alive connections, prints a table and writes
 * `bench/results/registry-<timestamp>.json`. The scratch database is dropped at the end, also on failure and
 * on SIGINT (unless `--keep-database`: then it is kept for EXPLAIN ANALYZE, or for measuring again with
 * `--database <url>` after a change by hand, such as a candidate index, without seeding again).
 *
 * Its options are USAGE below (`npm run bench:registry -- --help`). `--gateway src` (the default) runs the gateway
 * from src/ through swc, so no build is needed; `dist` runs the compiled `dist/main.js` (`npm run build` first).
 * `--redis none` gives the gateway its in-process store: every gateway on one Redis hears the others'
 * `catalog:stale` signals and rebuilds its catalog, so on a Redis shared with other work (test suites) the figures
 * include those rebuilds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { MIGRATIONS_DIR } from '../src/bootstrap';
import { openDatabase } from '../src/database/database';
import { applyMigrations } from '../src/database/migrator';
import { fingerprintOf } from '../src/discovery/fingerprint';
import { gatewayName } from '../src/discovery/gateway-names';
import type { Definition } from '../src/discovery/upstream-catalog';
import { createLogger } from '../src/logging/logger';
import { encodeCursor } from '../src/registry/cursor';
import { type ServerRecord, toServerView } from '../src/registry/server-record';
import type { ServerStatus } from '../src/registry/server.schema';
import { holdFreeLoopbackPort } from '../test/support/loopback';
import { createScratchDatabase, REDIS_URL } from '../test/support/services';
import { parseCommandLine, runScript, UsageError, wholeNumber } from './command-line';
import { waitUntilReady } from './gateway-child';
import { cpuMsOf } from './process-stats';
import { withoutCredentials } from './report';

const REPO_ROOT = path.resolve(__dirname, '..');
const SWC_REGISTER = path.join(__dirname, 'swc-register.cjs');
const RESULTS_DIR = path.join(__dirname, 'results');
const API = '/api/v1';
const FACADE = `${API}/registry/v0.1/servers`;
/** PostgreSQL accepts at most 65,535 parameters per statement. */
const MAX_PARAMETERS = 60_000;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------
// Options

interface Options {
  servers: number;
  tools: number;
  requests: number;
  warmup: number;
  concurrency: number;
  gateway: 'src' | 'dist';
  /** Undefined: the gateway's in-process store. */
  redisUrl?: string;
  only?: string;
  keepDatabase: boolean;
  /** A database kept by an earlier run with the same --servers and --tools: measured as it is, never dropped. */
  database?: string;
}

const USAGE = `Usage: npm run bench:registry -- [--servers 10000] [--tools 20] [--requests 2000] [--warmup 200]
                                 [--concurrency 8] [--gateway src|dist] [--redis <url>|none]
                                 [--only <route substring>] [--keep-database | --database <url>]
`;

function parseOptions(argv: string[]): Options {
  const { values } = parseCommandLine({
    args: argv,
    options: {
      servers: { type: 'string', default: '10000' },
      tools: { type: 'string', default: '20' },
      requests: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '8' },
      gateway: { type: 'string', default: 'src' },
      redis: { type: 'string', default: REDIS_URL },
      only: { type: 'string' },
      'keep-database': { type: 'boolean', default: false },
      database: { type: 'string' },
    },
  });
  const count = (key: 'servers' | 'tools' | 'requests' | 'warmup' | 'concurrency', min: number, max = 1e7): number =>
    wholeNumber(values[key], key, min, max);
  if (values.gateway !== 'src' && values.gateway !== 'dist') throw new UsageError('--gateway must be src or dist');
  if (values.database !== undefined && values['keep-database']) {
    throw new UsageError('--database is never dropped: --keep-database goes without it');
  }
  return {
    servers: count('servers', 10),
    // VERBS x NOUNS: the distinct tool names one server can have.
    tools: count('tools', 1, 200),
    requests: count('requests', 1),
    warmup: count('warmup', 0),
    concurrency: count('concurrency', 1),
    gateway: values.gateway,
    redisUrl: values.redis === 'none' ? undefined : values.redis,
    only: values.only,
    keepDatabase: values['keep-database'],
    database: values.database,
  };
}

// ---------------------------------------------------------------------------
// Data set: deterministic, with the skew of a real registry (repeated tool names, a few tags per server, a
// few deprecated and disabled servers, names hashed because they hold a dot).

const DOMAINS = words(`
  weather github jira slack postgres stripe salesforce zendesk notion confluence datadog sentry
  pagerduty kubernetes terraform aws azure gcp snowflake bigquery hubspot shopify twilio sendgrid
  figma linear asana trello dropbox box gitlab bitbucket jenkins circleci okta auth0 elastic redis
  mongodb kafka
`);
const TAGS = words(`
  analytics devops crm finance support security storage messaging database cloud monitoring ci docs
  design sales marketing hr legal search ai internal beta eu us apac payments identity logs tickets
  files
`);
const VERBS = words(`
  get list search create update delete run fetch describe query
`);
const NOUNS = words(`
  forecast issue pull_request file user invoice ticket document record metric alert deployment
  pipeline table message channel event order customer report
`);
const READ_VERBS = new Set(['get', 'list', 'search', 'fetch', 'describe', 'query']);
const SEED_TIME = Date.UTC(2026, 0, 1);

/** Terms the searches use: one common, one that matches nothing (the whole table is read). */
const SERVER_TERM = 'weather';
const TOOL_TERM = 'forecast';
const MISSING_TERM = 'qqxz';
/**
 * A server's name, which its tools' descriptions mention: its matches all sit at the end of the gateway-name
 * order (`zendesk-…__…`), the worst case for a search that walks that order until a page is full.
 */
const CLUSTERED_TERM = 'zendesk';
const TAG = 'analytics';

function words(text: string): string[] {
  return text.trim().split(/\s+/);
}

/** mulberry32: the same data set on every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(items: readonly T[], next: () => number): T {
  return items[Math.floor(next() * items.length)] as T;
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function statusOf(index: number): ServerStatus {
  if (index % 50 === 7) return 'disabled';
  if (index % 20 === 3) return 'deprecated';
  return 'active';
}

/** The same id for the same server on every run, so that a kept database can be measured again. */
function idOf(index: number): string {
  const hex = createHash('sha256').update(`mcp-gateway bench server ${index}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function serverAt(index: number): ServerRecord {
  const next = random(index + 1);
  const domain = DOMAINS[index % DOMAINS.length] as string;
  const tags = new Set<string>();
  const tagCount = 1 + Math.floor(next() * 3);
  while (tags.size < tagCount) tags.add(pick(TAGS, next));
  const status = statusOf(index);
  // Distinct creation times one second apart: the registry's list order is (created_at, id).
  const createdAt = new Date(SEED_TIME + index * 1000);
  return {
    id: idOf(index),
    name: `com.vendor${index % 250}/${domain}-${index}`,
    slug: `${domain}-${index}`,
    title: `${capitalize(domain)} ${index}`,
    description: `${capitalize(domain)} tools for team ${index % 97}`,
    version: `1.${index % 7}.${index % 13}`,
    url: `https://mcp-${index}.internal.example/mcp`,
    transport: 'streamable-http',
    auth: index % 3 === 0 ? { type: 'none' } : { type: 'headers', headers: { 'X-Api-Key': { env: `KEY_${index}` } } },
    tags: [...tags],
    status,
    statusMessage: status === 'deprecated' ? 'moving to v2' : null,
    allowedRoles: index % 4 === 0 ? [] : ['Gateway.User', `Team.${index % 97}`],
    timeouts: index % 5 === 0 ? { requestMs: 30_000 } : {},
    toolRules: index % 6 === 0 ? { deny: ['delete_*'] } : {},
    revision: 1,
    createdAt,
    updatedAt: createdAt,
  };
}

function toolsOf(server: ServerRecord, count: number, index: number): Definition[] {
  const next = random(1_000_003 + index);
  const names = new Set<string>();
  // A few upstreams use dotted names, which the gateway hashes into its own.
  while (names.size < count) {
    const verb = pick(VERBS, next);
    const noun = pick(NOUNS, next);
    names.add(next() < 0.03 ? `${noun}.${verb}` : `${verb}_${noun}`);
  }
  return [...names].map((name) => {
    const [verb = '', noun = ''] = name.includes('.') ? name.split('.').reverse() : name.split(/_(.*)/);
    const thing = noun.replace(/_/g, ' ');
    return {
      name,
      title: `${capitalize(verb)} ${thing}`,
      description: `${capitalize(verb)} a ${thing} in ${server.title ?? server.name}. Returns JSON.`,
      inputSchema: {
        type: 'object',
        properties: {
          id: { type: 'string', description: `The ${thing} id` },
          limit: { type: 'integer', minimum: 1, maximum: 100, description: 'Page size' },
          cursor: { type: 'string', description: 'Where the previous page ended' },
        },
        required: verb === 'list' || verb === 'search' ? [] : ['id'],
      },
      annotations: { readOnlyHint: READ_VERBS.has(verb), destructiveHint: verb === 'delete' },
    };
  });
}

// ---------------------------------------------------------------------------
// Seeding

/** One row to insert, keyed by column; every row of one call has the same columns. */
type Row = Record<string, unknown>;

/** Multi-row INSERTs, as many rows per statement as the parameter limit allows. */
async function insertRows(client: Client, table: string, rows: readonly Row[]): Promise<void> {
  const columns = Object.keys(rows[0] ?? {});
  const perStatement = Math.floor(MAX_PARAMETERS / Math.max(columns.length, 1));
  for (let start = 0; start < rows.length; start += perStatement) {
    const values: unknown[] = [];
    const tuples = rows.slice(start, start + perStatement).map((row) => {
      const placeholders = columns.map((column) => {
        values.push(row[column]);
        return `$${values.length}`;
      });
      return `(${placeholders.join(',')})`;
    });
    await client.query(`INSERT INTO ${table} (${columns.join(',')}) VALUES ${tuples.join(',')}`, values);
  }
}

const HEALTH_STATES = ['healthy', 'healthy', 'healthy', 'healthy', 'degraded', 'unreachable', 'unknown'] as const;
/** Servers per transaction: about 20,000 item rows at 20 tools, a few MB of statement text. */
const SERVERS_PER_CHUNK = 1000;
const json = (value: unknown): string => JSON.stringify(value);

/** The rows the registry (servers, server_versions), discovery (server_items) and the prober (server_health) write. */
function rowsOf(
  server: ServerRecord,
  index: number,
  tools: number,
): Record<'server' | 'version' | 'health', Row> & {
  items: Row[];
} {
  const checkedAt = new Date(server.createdAt.getTime() + 3_600_000);
  const latencies = [12 + (index % 30), 15 + (index % 17), 11 + (index % 23)];
  return {
    server: {
      id: server.id,
      name: server.name,
      slug: server.slug,
      title: server.title,
      description: server.description,
      version: server.version,
      url: server.url,
      transport: server.transport,
      auth: json(server.auth),
      tags: server.tags,
      status: server.status,
      status_message: server.statusMessage,
      allowed_roles: server.allowedRoles,
      tool_rules: json(server.toolRules),
      timeouts: json(server.timeouts),
      revision: server.revision,
      created_at: server.createdAt,
      updated_at: server.updatedAt,
    },
    version: {
      id: randomUUID(),
      server_id: server.id,
      name: server.name,
      version: server.version,
      record: json(toServerView(server)),
      status: server.status,
      is_latest: true,
      published_at: server.createdAt,
      updated_at: server.updatedAt,
    },
    items: toolsOf(server, tools, index).map((definition, position) => {
      const name = String(definition.name);
      return {
        server_id: server.id,
        kind: 'tool',
        name,
        gateway_name: gatewayName(server.slug, name),
        title: definition.title,
        description: definition.description,
        definition: json(definition),
        fingerprint: fingerprintOf('tool', definition),
        position,
      };
    }),
    health: {
      server_id: server.id,
      status: HEALTH_STATES[index % HEALTH_STATES.length],
      consecutive_failures: 0,
      consecutive_successes: 3,
      last_checked_at: checkedAt,
      last_success_at: checkedAt,
      recent_latencies: latencies,
      latency_p50_ms: Math.min(...latencies),
      latency_p95_ms: Math.max(...latencies),
      changed_at: checkedAt,
    },
  };
}

async function seed(url: string, servers: readonly ServerRecord[], tools: number): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    for (let first = 0; first < servers.length; first += SERVERS_PER_CHUNK) {
      const chunk = servers
        .slice(first, first + SERVERS_PER_CHUNK)
        .map((server, offset) => rowsOf(server, first + offset, tools));
      await client.query('BEGIN');
      await insertRows(
        client,
        'servers',
        chunk.map((rows) => rows.server),
      );
      await insertRows(
        client,
        'server_versions',
        chunk.map((rows) => rows.version),
      );
      await insertRows(
        client,
        'server_items',
        chunk.flatMap((rows) => rows.items),
      );
      await insertRows(
        client,
        'server_health',
        chunk.map((rows) => rows.health),
      );
      await client.query('COMMIT');
    }
    // Statistics as autovacuum would have them on a registry this size; a freshly loaded table has none.
    await client.query('VACUUM ANALYZE');
  } finally {
    await client.end();
  }
}

/** Refuses a `--database` that does not hold the data set these options describe. */
async function checkSeeded(url: string, servers: readonly ServerRecord[], tools: number): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const last = servers.at(-1);
    const { rows } = await client.query<{ servers: number; items: number; last: boolean }>(
      `SELECT (SELECT count(*)::int FROM servers) AS servers, (SELECT count(*)::int FROM server_items) AS items,
              EXISTS (SELECT 1 FROM servers WHERE id = $1 AND name = $2) AS last`,
      [last?.id, last?.name],
    );
    const found = rows[0];
    if (!found || found.servers !== servers.length || found.items !== servers.length * tools || !found.last) {
      throw new UsageError(
        `--database does not hold the data set of --servers ${servers.length} --tools ${tools} ` +
          `(it has ${found?.servers} servers, ${found?.items} items)`,
      );
    }
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------
// The gateway under test, in a process of its own

interface Gateway {
  url: string;
  /** CPU time the gateway process has used so far (user + system), or undefined where /proc is not there. */
  cpuMs(): number | undefined;
  stop(): Promise<void>;
}

async function startGateway(databaseUrl: string, options: Options, dataDir: string): Promise<Gateway> {
  // Held until the gateway listens on it, so that no other process takes it first.
  const held = await holdFreeLoopbackPort();
  const port = held.port;
  const entry = options.gateway === 'dist' ? ['dist/main.js'] : ['-r', SWC_REGISTER, 'src/main.ts'];
  const child = spawn(process.execPath, [...entry, 'serve', '--no-migrate'], {
    cwd: REPO_ROOT,
    // Only what the gateway needs: no DATABASE_URL or AZURE_* of the caller's shell leaks in.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      REDIS_URL: options.redisUrl,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      DISCOVERY_INTERVAL_MS: '0',
      HEALTH_PROBE_INTERVAL_MS: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Warnings and errors of the gateway go to stderr, apart from the figures on stdout.
  child.stdout?.pipe(process.stderr);
  child.stderr?.pipe(process.stderr);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const stop = () => stopChild(child, exited);
  try {
    await waitUntilReady(url, exited, { timeoutMs: READY_TIMEOUT_MS, pollMs: 200 });
  } catch (error) {
    await stop();
    throw error;
  } finally {
    held.release();
  }
  return { url, cpuMs: () => cpuMsOf(child.pid), stop };
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------
// Measuring

interface Route {
  name: string;
  /** The path of the i-th request. */
  path: (i: number) => string;
  /** Entries in a response body, to show that the route did the work it names. */
  entries: (body: unknown) => number;
}

interface Measurement {
  route: string;
  mode: string;
  requests: number;
  errors: number;
  /** Entries in the first successful response. */
  entries: number | null;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** CPU time of the gateway process per request (PostgreSQL's is not in it), when it could be read. */
  gatewayCpuMsPerRequest: number | null;
  loadBefore: number[];
  loadAfter: number[];
}

interface Outcome {
  ok: boolean;
  ms: number;
  body?: string;
}

function get(agent: http.Agent, base: string, target: string, keepBody: boolean): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e6;
    const req = http.get(`${base}${target}`, { agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => {
        if (keepBody) chunks.push(chunk);
      });
      res.on('end', () => {
        const ok = res.statusCode !== undefined && res.statusCode < 400;
        resolve({ ok, ms: elapsed(), body: keepBody ? Buffer.concat(chunks).toString('utf8') : undefined });
      });
      res.on('error', () => resolve({ ok: false, ms: elapsed() }));
    });
    req.on('error', () => resolve({ ok: false, ms: elapsed() }));
  });
}

/** Nearest rank. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

async function measure(
  gateway: Gateway,
  route: Route,
  mode: string,
  requests: number,
  concurrency: number,
): Promise<Measurement> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let entries: number | null = null;
  let next = 0;
  const loadBefore = os.loadavg();
  const cpuBefore = gateway.cpuMs();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const outcome = await get(agent, gateway.url, route.path(i), entries === null);
        if (!outcome.ok) {
          errors++;
          continue;
        }
        latencies.push(outcome.ms);
        if (entries === null && outcome.body !== undefined) entries = route.entries(JSON.parse(outcome.body));
      }
    }),
  );
  const cpuAfter = gateway.cpuMs();
  agent.destroy();
  const sorted = latencies.sort((a, b) => a - b);
  return {
    route: route.name,
    mode,
    requests,
    errors,
    entries,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.reduce((sum, ms) => sum + ms, 0) / (sorted.length || 1),
    gatewayCpuMsPerRequest:
      cpuBefore === undefined || cpuAfter === undefined ? null : (cpuAfter - cpuBefore) / requests,
    loadBefore,
    loadAfter: os.loadavg(),
  };
}

async function warmUp(base: string, route: Route, requests: number): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < requests; i++) await get(agent, base, route.path(i), false);
  agent.destroy();
}

const count =
  (key: string) =>
  (body: unknown): number => {
    const list = (body as Record<string, unknown>)[key];
    return Array.isArray(list) ? list.length : 0;
  };
const one = (): number => 1;

function routesFor(servers: readonly ServerRecord[]): Route[] {
  // What the facade shows (it hides disabled servers).
  const listed = servers.filter((server) => server.status !== 'disabled');
  // Far apart in the table, so repeated lookups do not keep hitting one cached page.
  const spread = <T>(items: readonly T[], i: number): T => items[(i * 7919) % items.length] as T;
  const deep = servers[Math.floor(servers.length * 0.9) - 1];
  if (!deep) throw new Error('no servers seeded');
  const cursor = encodeCursor({ createdAt: deep.createdAt, id: deep.id });
  const refOf = (server: ServerRecord, i: number): string =>
    [server.id, server.slug, encodeURIComponent(server.name)][i % 3] as string;
  return [
    { name: 'servers ?limit=30', path: () => `${API}/servers?limit=30`, entries: count('servers') },
    {
      name: 'servers ?limit=30&cursor=<90%>',
      path: () => `${API}/servers?limit=30&cursor=${cursor}`,
      entries: count('servers'),
    },
    { name: `servers ?q=${SERVER_TERM}`, path: () => `${API}/servers?q=${SERVER_TERM}`, entries: count('servers') },
    {
      name: `servers ?q=${MISSING_TERM} (none)`,
      path: () => `${API}/servers?q=${MISSING_TERM}`,
      entries: count('servers'),
    },
    { name: `servers ?tag=${TAG}`, path: () => `${API}/servers?tag=${TAG}`, entries: count('servers') },
    {
      name: 'servers/{id|slug|name}',
      path: (i) => `${API}/servers/${refOf(spread(servers, i), i)}`,
      entries: one,
    },
    { name: 'discovery/tools (no q)', path: () => `${API}/discovery/tools`, entries: count('items') },
    {
      name: `discovery/tools ?q=${TOOL_TERM}`,
      path: () => `${API}/discovery/tools?q=${TOOL_TERM}`,
      entries: count('items'),
    },
    {
      name: `discovery/tools ?q=${MISSING_TERM} (none)`,
      path: () => `${API}/discovery/tools?q=${MISSING_TERM}`,
      entries: count('items'),
    },
    {
      name: `discovery/tools ?q=${CLUSTERED_TERM} (clustered)`,
      path: () => `${API}/discovery/tools?q=${CLUSTERED_TERM}`,
      entries: count('items'),
    },
    { name: 'facade ?limit=30', path: () => `${FACADE}?limit=30`, entries: count('servers') },
    { name: `facade ?search=${SERVER_TERM}`, path: () => `${FACADE}?search=${SERVER_TERM}`, entries: count('servers') },
    {
      name: 'facade {name}/versions/latest',
      path: (i) => `${FACADE}/${encodeURIComponent(spread(listed, i).name)}/versions/latest`,
      entries: one,
    },
  ];
}

// ---------------------------------------------------------------------------
// Report

function table(results: readonly Measurement[]): string {
  const header = [
    'route',
    'mode',
    'requests',
    'entries',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'errors',
    'gw cpu ms/req',
  ];
  const ms = (value: number): string => value.toFixed(1);
  const rows = results.map((r) => [
    r.route,
    r.mode,
    String(r.requests),
    r.entries === null ? '-' : String(r.entries),
    ms(r.p50),
    ms(r.p90),
    ms(r.p99),
    ms(r.max),
    String(r.errors),
    r.gatewayCpuMsPerRequest === null ? '-' : r.gatewayCpuMsPerRequest.toFixed(2),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  // The first two columns are text (left-aligned), the rest figures (right-aligned).
  const align = (text: string, column: number): string =>
    column < 2 ? text.padEnd(widths[column] ?? 0) : text.padStart(widths[column] ?? 0);
  const line = (cells: string[]): string => `| ${cells.map(align).join(' | ')} |`;
  const dashes = (width: number, column: number): string =>
    column < 2 ? `:${'-'.repeat(width + 1)}` : `${'-'.repeat(width + 1)}:`;
  const rule = `|${widths.map(dashes).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function uptime(): string {
  const [one, five, fifteen] = os.loadavg().map((load) => load.toFixed(2));
  return `load average ${one}, ${five}, ${fifteen} on ${os.cpus().length} CPUs`;
}

// ---------------------------------------------------------------------------

async function migrate(url: string): Promise<void> {
  const connection = await openDatabase(
    { kind: 'postgres', url, poolSize: 1, queryTimeoutMs: 10_000 },
    createLogger({ logLevel: 'warn' }),
  );
  try {
    await applyMigrations(connection.adapterFactory, MIGRATIONS_DIR);
  } finally {
    await connection.close();
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const cleanups: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanUp = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const step of cleanups.reverse()) {
        await step().catch((error: unknown) => process.stderr.write(`cleanup failed: ${String(error)}\n`));
      }
    })());
  process.once('SIGINT', () => {
    process.stderr.write('interrupted: stopping the gateway and dropping the scratch database (if any)\n');
    void cleanUp().finally(() => process.exit(130));
  });

  let keep = false;
  try {
    const servers = Array.from({ length: options.servers }, (_, index) => serverAt(index));
    let databaseUrl: string;
    let seedMs: number | null = null;
    if (options.database !== undefined) {
      databaseUrl = options.database;
      await checkSeeded(databaseUrl, servers, options.tools);
      say(`measuring the kept database as it is (${options.servers} servers with ${options.tools} tools each)`);
    } else {
      const database = await createScratchDatabase();
      databaseUrl = database.url;
      cleanups.push(async () => {
        if (keep) say(`kept the scratch database: ${database.url} (drop it with DROP DATABASE … WITH (FORCE))`);
        else await database.drop();
      });
      await migrate(databaseUrl);
      say(`seeding ${options.servers} servers with ${options.tools} tools each …`);
      const seedStarted = Date.now();
      await seed(databaseUrl, servers, options.tools);
      seedMs = Date.now() - seedStarted;
      say(`seeded in ${(seedMs / 1000).toFixed(1)} s (with VACUUM ANALYZE)`);
    }

    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mcp-gateway-bench-'));
    cleanups.push(() => Promise.resolve(rmSync(dataDir, { recursive: true, force: true })));
    const gateway = await startGateway(databaseUrl, options, dataDir);
    cleanups.push(() => gateway.stop());
    const store = options.redisUrl === undefined ? 'in-process store' : 'Redis';
    say(`gateway (${options.gateway}, ${store}) at ${gateway.url}; ${uptime()}`);

    const routes = routesFor(servers).filter((route) => !options.only || route.name.includes(options.only));
    const results: Measurement[] = [];
    const loadBefore = os.loadavg();
    for (const route of routes) {
      await warmUp(gateway.url, route, options.warmup);
      results.push(await measure(gateway, route, 'seq', options.requests, 1));
      results.push(await measure(gateway, route, `c=${options.concurrency}`, options.requests, options.concurrency));
      const last = results.slice(-2);
      say(`  ${route.name}: p99 ${last.map((r) => `${r.mode} ${r.p99.toFixed(1)} ms`).join(', ')}`);
    }
    const loadAfter = os.loadavg();

    say('');
    say(table(results));
    say('');
    say(`while measuring: before ${loadBefore.map((l) => l.toFixed(2)).join(', ')}; after ${uptime()}`);

    const finished = new Date();
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `registry-${finished.toISOString().replace(/[:.]/g, '-')}.json`);
    const report = {
      benchmark: 'registry',
      finishedAt: finished.toISOString(),
      // URLs without their user and password: the file may be shared.
      options: {
        ...options,
        database: withoutCredentials(options.database),
        redisUrl: withoutCredentials(options.redisUrl),
      },
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        memoryGb: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        loadBefore,
        loadAfter,
      },
      dataSet: { servers: options.servers, toolsPerServer: options.tools, seedMs },
      results,
    };
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    say(`results: ${path.relative(REPO_ROOT, file)}`);
    keep = options.keepDatabase;
  } finally {
    await cleanUp();
  }
}

runScript('bench:registry', USAGE, main);
