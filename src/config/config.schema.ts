import { isIP } from 'node:net';
import { z } from 'zod';
import { rateSchema } from '../ratelimit/rate-limit-policy';

/**
 * Every environment variable the CLI reads (`envSchema` and `clientEnvSchema`), declared once. The README's
 * configuration table is checked against this list by a test.
 */
export interface ConfigVariable {
  key: string;
  defaultText: string;
  secret: boolean;
  description: string;
}

/** More worker processes than this on one machine is a mistake (each holds its own pools and caches). */
export const MAX_WORKERS = 128;
export const WORKERS_RULE = `must be a whole number from 1 to ${MAX_WORKERS}, or auto`;

/** `auto`, or a whole number of worker processes within bounds. */
export function isWorkersValue(value: string): boolean {
  return value === 'auto' || (/^\d{1,4}$/.test(value) && Number(value) >= 1 && Number(value) <= MAX_WORKERS);
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A whole number in decimal digits that `accepted` takes (spaces around the digits are ignored); `rule` is the error.
 * Not `z.coerce.number()`, which also takes hexadecimal, exponents and a blank value, as 0: `PORT=" "` listened on a
 * random port, and a blank AUDIT_RETENTION_INTERVAL_MS turned retention off.
 */
const decimal = (rule: string, accepted: (value: number) => boolean) =>
  z
    .string()
    .trim()
    .regex(/^\d{1,16}$/, rule)
    .transform(Number)
    .refine(accepted, rule);

/** A whole number from `min` to `max` (of `unit`). */
const wholeNumber = (min: number, max: number, unit?: string) =>
  decimal(`must be a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}`, (v) => v >= min && v <= max);

const port = wholeNumber(0, 65535);
const positiveInt = (max: number) => wholeNumber(1, max);
const milliseconds = (min: number, max: number) => wholeNumber(min, max, 'milliseconds');

const SPOOL_RULE = 'must be 0 (no limit) or a whole number of bytes from 1048576 to 1099511627776';

const pathPrefix = z.string().regex(/^\/[a-zA-Z0-9._~/-]*[a-zA-Z0-9._~-]$/, 'must start with / and not end with /');

const httpUrl = z
  .string()
  .refine((value) => /^https?:$/.test(safeUrl(value)?.protocol ?? ''), 'must be an http(s) URL');

/** What the `servers …` commands reach: a gateway's admin API takes no credentials, and a URL holding some would echo them. */
export const GATEWAY_URL_RULE = 'must be an http(s) URL without a user name or password';

/** An http(s) URL without `user:password@`. */
export function isGatewayUrl(value: string): boolean {
  const url = safeUrl(value);
  return /^https?:$/.test(url?.protocol ?? '') && url?.username === '' && url.password === '';
}

const boolean = z
  .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
  .transform((value) => value === 'true' || value === '1');

/** Entra app role and scope values: no spaces or commas (both separate list items). */
const nameList = z
  .string()
  .transform((value) => value.split(/[\s,]+/).filter((item) => item.length > 0))
  .refine((list) => list.every((item) => /^[\x21-\x7e]{1,200}$/.test(item)), 'must be names without spaces');

const guidList = z
  .string()
  .transform((value) => splitList(value))
  .refine((list) => list.every((item) => GUID.test(item)), 'must be comma-separated GUIDs');

const TRUST_PROXY_RULE =
  'must be a hop count from 1 to 10, or a comma-separated list of IP addresses, CIDRs, loopback, linklocal, uniquelocal';
const NAMED_SUBNETS = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** `TRUST_PROXY`: never `true` (every client could then claim any address), only hops or named proxies. */
function isTrustProxyValue(value: string): boolean {
  if (/^\d+$/.test(value)) return Number(value) >= 1 && Number(value) <= 10;
  const entries = splitList(value);
  return entries.length > 0 && entries.every(isProxyAddress);
}

function isProxyAddress(entry: string): boolean {
  if (NAMED_SUBNETS.has(entry)) return true;
  const [address = '', bits, extra] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

function toTrustProxy(value: string): number | string[] {
  return /^\d+$/.test(value) ? Number(value) : splitList(value);
}

const apiPrefix = pathPrefix.default('/api/v1');

/** What the gateway's own commands (`serve`, `migrate`, `token`, `audit verify`) read. */
const envSchema = z.object({
  HOST: z.string().min(1, 'must not be empty').default('0.0.0.0'),
  PORT: port.default(8000),
  PUBLIC_URL: httpUrl.optional(),
  API_PREFIX: apiPrefix,
  MCP_PREFIX: pathPrefix.default('/mcp'),
  DATABASE_URL: z
    .string()
    .refine((value) => /^postgres(ql)?:$/.test(safeUrl(value)?.protocol ?? ''), 'must be a postgresql:// URL')
    .optional(),
  DATABASE_POOL_SIZE: positiveInt(1000).default(10),
  DATABASE_QUERY_TIMEOUT_MS: milliseconds(100, 3_600_000).default(10_000),
  DATA_DIR: z.string().min(1, 'must not be empty').default('./.mcp-gateway'),
  REDIS_URL: z
    .string()
    .refine((value) => /^rediss?:$/.test(safeUrl(value)?.protocol ?? ''), 'must be a redis:// or rediss:// URL')
    .optional(),
  REDIS_COMMAND_TIMEOUT_MS: milliseconds(10, 600_000).default(2_000),
  AUTH_MODE: z.enum(['entra', 'dev'], { error: 'must be one of: entra, dev' }).default('entra'),
  AZURE_TENANT_ID: z.string().regex(GUID, 'must be a GUID').optional(),
  AZURE_CLIENT_ID: z.string().regex(GUID, 'must be a GUID').optional(),
  AZURE_AUDIENCES: z.string().transform(splitList).optional(),
  AZURE_ALLOWED_TENANTS: guidList.optional(),
  AZURE_AUTHORITY_HOST: httpUrl.default('https://login.microsoftonline.com'),
  AZURE_CLIENT_SECRET: z.string().min(1, 'must not be empty').optional(),
  AZURE_CLIENT_CERTIFICATE_PATH: z.string().min(1, 'must not be empty').optional(),
  AZURE_ACCEPT_V1_TOKENS: boolean.default(false),
  AZURE_JWKS_CACHE_MAX_AGE_MS: milliseconds(1_000, 604_800_000).default(3_600_000),
  AUTH_CLOCK_TOLERANCE_MS: milliseconds(0, 600_000).default(60_000),
  AUTH_REQUIRED_SCOPES: nameList.default(['access_as_user']),
  AUTH_ADMIN_ROLE: z
    .string()
    .regex(/^[\x21-\x2b\x2d-\x7e]{1,200}$/, 'must be a role name without spaces or commas')
    .default('Gateway.Admin'),
  AUTH_DEFAULT_ROLES: nameList.optional(),
  NODE_ENV: z.string().min(1, 'must not be empty').optional(),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
      error: 'must be one of: fatal, error, warn, info, debug, trace, silent',
    })
    .default('info'),
  UPSTREAM_ALLOWED_HOSTS: z.string().transform(splitList).optional(),
  UPSTREAM_DENIED_HOSTS: z.string().transform(splitList).optional(),
  UPSTREAM_CONNECT_TIMEOUT_MS: milliseconds(1, 600_000).default(10_000),
  UPSTREAM_REQUEST_TIMEOUT_MS: milliseconds(1, 3_600_000).default(60_000),
  DISCOVERY_INTERVAL_MS: milliseconds(0, 86_400_000).default(300_000),
  HEALTH_PROBE_INTERVAL_MS: milliseconds(0, 86_400_000).default(30_000),
  HEALTH_PROBE_TIMEOUT_MS: milliseconds(1, 600_000).default(5_000),
  HEALTH_PROBE_CONCURRENCY: positiveInt(1000).default(8),
  HEALTH_UNREACHABLE_AFTER: positiveInt(1000).default(3),
  HEALTH_HEALTHY_AFTER: positiveInt(1000).default(1),
  HEALTH_DEGRADED_LATENCY_MS: milliseconds(1, 600_000).default(1_000),
  MCP_ALLOWED_HOSTS: z.string().transform(splitList).optional(),
  MCP_ALLOWED_ORIGINS: z.string().transform(splitList).optional(),
  MAX_BODY_BYTES: wholeNumber(1024, 104_857_600, 'bytes').default(1_048_576),
  MCP_STATELESS: z.enum(['true', 'false'], { error: 'must be true or false' }).default('false'),
  MCP_SESSION_IDLE_MS: milliseconds(1_000, 86_400_000).default(1_800_000),
  AUDIT_ARGUMENTS: z
    .enum(['off', 'redacted', 'hash'], { error: 'must be one of: off, redacted, hash' })
    .default('redacted'),
  AUDIT_REDACT_KEYS: z
    .string()
    .max(1000, 'must be at most 1000 characters')
    .refine(isRegExp, 'must be a regular expression')
    .default('password|passwd|secret|token|key|authorization|cookie|credential'),
  AUDIT_ARGUMENTS_MAX_BYTES: wholeNumber(256, 1_048_576, 'bytes').default(8192),
  AUDIT_QUEUE_CAPACITY: positiveInt(1_000_000).default(10_000),
  AUDIT_BATCH_SIZE: positiveInt(10_000).default(500),
  AUDIT_FLUSH_INTERVAL_MS: milliseconds(1, 60_000).default(200),
  AUDIT_WRITE_TIMEOUT_MS: milliseconds(100, 600_000).default(10_000),
  AUDIT_SPOOL_MAX_BYTES: decimal(
    SPOOL_RULE,
    (bytes) => bytes === 0 || (bytes >= 1_048_576 && bytes <= 1_099_511_627_776),
  ).default(1_073_741_824),
  AUDIT_RETENTION_DAYS: wholeNumber(0, 36_500, 'days').default(90),
  AUDIT_RETENTION_INTERVAL_MS: milliseconds(0, 86_400_000).default(3_600_000),
  AUDIT_HMAC_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  METRICS_TOOL_LABELS_PER_SERVER: positiveInt(10_000).default(50),
  METRICS_SERVER_LABELS: positiveInt(100_000).default(1_000),
  WORKERS: z.string().refine(isWorkersValue, WORKERS_RULE).default('1'),
  HEAP_GROWTH_PERCENT: wholeNumber(0, 300).default(30),
  SHUTDOWN_GRACE_MS: milliseconds(0, 600_000).default(10_000),
  RATE_LIMIT_ENABLED: boolean.default(true),
  RATE_LIMIT_FILE: z.string().min(1, 'must not be empty').optional(),
  RATE_LIMIT_PRINCIPAL: rateSchema.optional(),
  RATE_LIMIT_ADMIN: rateSchema.optional(),
  RATE_LIMIT_TENANT: rateSchema.optional(),
  RATE_LIMIT_IP: z.union([z.literal('off'), rateSchema]).optional(),
  TRUST_PROXY: z.string().refine(isTrustProxyValue, TRUST_PROXY_RULE).transform(toTrustProxy).optional(),
  RATE_LIMIT_ON_REDIS_DOWN: z.enum(['local', 'refuse'], { error: 'must be local or refuse' }).optional(),
  RATE_LIMIT_REPLICAS: positiveInt(1000).default(1),
  RATE_LIMIT_REDIS_TIMEOUT_MS: milliseconds(1, 10_000).default(100),
  RATE_LIMIT_LEASE_PERCENT: wholeNumber(0, 10).default(1),
});

/**
 * What the `servers …` commands read to reach a running gateway, apart from `envSchema`: `serve` never uses
 * MCP_GATEWAY_URL, and a malformed one (set for those commands, in a shared environment) must not stop it.
 */
const clientEnvSchema = z.object({
  MCP_GATEWAY_URL: z.string().refine(isGatewayUrl, GATEWAY_URL_RULE).default('http://localhost:8000'),
  API_PREFIX: apiPrefix,
});

export type RawEnv = z.input<typeof envSchema>;
export type ParsedEnv = z.output<typeof envSchema>;
export { clientEnvSchema, envSchema };

export const CONFIG_VARIABLES: readonly ConfigVariable[] = [
  { key: 'HOST', defaultText: '`0.0.0.0`', secret: false, description: 'listen address' },
  { key: 'PORT', defaultText: '`8000`', secret: false, description: 'listen port (0 picks a free one)' },
  {
    key: 'PUBLIC_URL',
    defaultText: '`http://localhost:$PORT`',
    secret: false,
    description:
      'external base URL, used in OAuth metadata and registry `remotes`; also names the gateway in the `Via` of its upstream requests (loop detection), so give each gateway of a chain its own',
  },
  { key: 'API_PREFIX', defaultText: '`/api/v1`', secret: false, description: 'path prefix of the admin API' },
  { key: 'MCP_PREFIX', defaultText: '`/mcp`', secret: false, description: 'path prefix of the MCP endpoints' },
  {
    key: 'MCP_GATEWAY_URL',
    defaultText: '`http://localhost:8000`',
    secret: false,
    description:
      'base URL of the running gateway the `servers …` commands talk to (they add `API_PREFIX`); `--url` wins; without a user name or password; read and checked by those commands only (`serve` ignores it)',
  },
  {
    key: 'DATABASE_URL',
    defaultText: 'unset → embedded PGlite in `$DATA_DIR`',
    secret: true,
    description: 'PostgreSQL URL',
  },
  {
    key: 'DATABASE_POOL_SIZE',
    defaultText: '`10`',
    secret: false,
    description: 'connections in the one PostgreSQL pool',
  },
  {
    key: 'DATABASE_QUERY_TIMEOUT_MS',
    defaultText: '`10000`',
    secret: false,
    description:
      'longest a statement of the PostgreSQL pool may run: PostgreSQL cancels it then (`statement_timeout`), and one still unanswered 1 s later closes its connection; its request gets 503. Also how long a connection may sit idle inside a transaction before PostgreSQL ends it (`idle_in_transaction_session_timeout`), freeing its locks (not migrations)',
  },
  {
    key: 'DATA_DIR',
    defaultText: '`./.mcp-gateway`',
    secret: false,
    description: 'embedded database and local state',
  },
  {
    key: 'REDIS_URL',
    defaultText: 'unset → in-process stores (single instance only, warned at start)',
    secret: true,
    description: 'Redis URL',
  },
  {
    key: 'REDIS_COMMAND_TIMEOUT_MS',
    defaultText: '`2000`',
    secret: false,
    description:
      'longest wait for Redis to answer one command before it counts as unavailable: an MCP request whose session cannot be read or stored in time gets 503; a rate-limit decision waits at most this; a connection with commands waiting and nothing received for five times as long is closed and opened again; the subscriber is pinged this often',
  },
  {
    key: 'AUTH_MODE',
    defaultText: '`entra`',
    secret: false,
    description: '`entra`, or `dev` (local signing key, tokens from `mcp-gateway token`)',
  },
  {
    key: 'AZURE_TENANT_ID',
    defaultText: '—',
    secret: false,
    description: 'home tenant GUID (needed for `entra`; without it `/mcp` refuses every request)',
  },
  {
    key: 'AZURE_CLIENT_ID',
    defaultText: '—',
    secret: false,
    description: "the gateway API's app registration; the expected audience (needed for `entra`)",
  },
  {
    key: 'AZURE_AUDIENCES',
    defaultText: '`$AZURE_CLIENT_ID,api://$AZURE_CLIENT_ID`',
    secret: false,
    description: 'accepted `aud` values, comma-separated',
  },
  {
    key: 'AZURE_ALLOWED_TENANTS',
    defaultText: '`$AZURE_TENANT_ID`',
    secret: false,
    description: 'tenant GUIDs whose tokens are accepted, comma-separated',
  },
  {
    key: 'AZURE_AUTHORITY_HOST',
    defaultText: '`https://login.microsoftonline.com`',
    secret: false,
    description: 'authority; tests point it at a local issuer',
  },
  {
    key: 'AZURE_CLIENT_SECRET',
    defaultText: '—',
    secret: true,
    description: 'confidential client credential for on-behalf-of / client-credentials calls to upstreams',
  },
  {
    key: 'AZURE_CLIENT_CERTIFICATE_PATH',
    defaultText: '—',
    secret: false,
    description:
      'PEM file holding the private key and certificate of the gateway app registration; used instead of `AZURE_CLIENT_SECRET` when set',
  },
  {
    key: 'AZURE_ACCEPT_V1_TOKENS',
    defaultText: '`false`',
    secret: false,
    description:
      'also accept v1.0 access tokens (issuer `https://sts.windows.net/{tid}/`, keys at `/{tid}/discovery/keys`)',
  },
  {
    key: 'AZURE_JWKS_CACHE_MAX_AGE_MS',
    defaultText: '`3600000`',
    secret: false,
    description:
      'how long a tenant’s signing keys are used before they are fetched again (an unknown `kid` refetches sooner; stale keys serve while the fetch fails)',
  },
  {
    key: 'AUTH_CLOCK_TOLERANCE_MS',
    defaultText: '`60000`',
    secret: false,
    description: 'clock skew allowed when checking a token’s `exp` and `nbf`',
  },
  {
    key: 'AUTH_REQUIRED_SCOPES',
    defaultText: '`access_as_user`',
    secret: false,
    description:
      'scopes every delegated token must carry, comma-separated; short names are advertised as `api://$AZURE_CLIENT_ID/<name>`, a value with `/` is advertised as is',
  },
  {
    key: 'AUTH_ADMIN_ROLE',
    defaultText: '`Gateway.Admin`',
    secret: false,
    description: 'app role that sees and calls every server and tool',
  },
  {
    key: 'AUTH_DEFAULT_ROLES',
    defaultText: '—',
    secret: false,
    description:
      'app roles that see a server registered without `allowedRoles`, comma-separated; unset: such a server is for the admin role only',
  },
  {
    key: 'NODE_ENV',
    defaultText: '—',
    secret: false,
    description: '`production` refuses `AUTH_MODE=dev`',
  },
  {
    key: 'LOG_LEVEL',
    defaultText: '`info`',
    secret: false,
    description: 'pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace`, `silent`',
  },
  {
    key: 'UPSTREAM_ALLOWED_HOSTS',
    defaultText: '—',
    secret: false,
    description:
      'hosts, IPs or CIDRs an upstream URL may use although refused by default (loopback, link-local, metadata, unspecified), comma-separated; `loopback` allows 127.0.0.0/8, ::1 and localhost',
  },
  {
    key: 'UPSTREAM_DENIED_HOSTS',
    defaultText: '—',
    secret: false,
    description: 'hosts, IPs or CIDRs an upstream URL may never use, on top of the defaults, comma-separated',
  },
  {
    key: 'UPSTREAM_CONNECT_TIMEOUT_MS',
    defaultText: '`10000`',
    secret: false,
    description: 'default time to connect to and initialize an upstream (a server’s `timeouts.connectMs` overrides it)',
  },
  {
    key: 'UPSTREAM_REQUEST_TIMEOUT_MS',
    defaultText: '`60000`',
    secret: false,
    description: 'default time an upstream request may take (a server’s `timeouts.requestMs` overrides it)',
  },
  {
    key: 'DISCOVERY_INTERVAL_MS',
    defaultText: '`300000`',
    secret: false,
    description: 'how often every active server is re-synced; `0` turns periodic sync off',
  },
  {
    key: 'HEALTH_PROBE_INTERVAL_MS',
    defaultText: '`30000`',
    secret: false,
    description: 'how often every active server is probed; `0` turns probing off',
  },
  {
    key: 'HEALTH_PROBE_TIMEOUT_MS',
    defaultText: '`5000`',
    secret: false,
    description: 'time one probe (connect, initialize, ping) may take',
  },
  {
    key: 'HEALTH_PROBE_CONCURRENCY',
    defaultText: '`8`',
    secret: false,
    description: 'probes running at once',
  },
  {
    key: 'HEALTH_UNREACHABLE_AFTER',
    defaultText: '`3`',
    secret: false,
    description: 'consecutive failed probes that make a server `unreachable`',
  },
  {
    key: 'HEALTH_HEALTHY_AFTER',
    defaultText: '`1`',
    secret: false,
    description: 'consecutive successful probes that make a failing server `healthy` again',
  },
  {
    key: 'HEALTH_DEGRADED_LATENCY_MS',
    defaultText: '`1000`',
    secret: false,
    description: 'a successful probe slower than this counts as `degraded`',
  },
  {
    key: 'MCP_ALLOWED_HOSTS',
    defaultText: 'the host of `PUBLIC_URL`, and loopback',
    secret: false,
    description: 'further `Host` names `/mcp` answers to (DNS-rebinding protection), comma-separated',
  },
  {
    key: 'MCP_ALLOWED_ORIGINS',
    defaultText: 'the origin of `PUBLIC_URL`, and loopback',
    secret: false,
    description: 'further browser origins allowed on `/mcp` (CORS), comma-separated; `*` allows any',
  },
  {
    key: 'MAX_BODY_BYTES',
    defaultText: '`1048576`',
    secret: false,
    description: 'largest JSON request body, on every route (413 beyond it)',
  },
  {
    key: 'MCP_STATELESS',
    defaultText: '`false`',
    secret: false,
    description:
      '`true`: `/mcp` keeps no sessions (no `Mcp-Session-Id`, no event stream), for clients that never keep them; `/mcp/{slug}` stays stateful',
  },
  {
    key: 'MCP_SESSION_IDLE_MS',
    defaultText: '`1800000`',
    secret: false,
    description: 'an MCP session unused this long expires (its id then answers 404)',
  },
  {
    key: 'AUDIT_ARGUMENTS',
    defaultText: '`redacted`',
    secret: false,
    description:
      'what the audit trail keeps of MCP request arguments: `off` (nothing), `redacted` (values under keys matching `AUDIT_REDACT_KEYS`, and tokens, whole or within a string, replaced at any depth) or `hash` (a sha256 of the canonical JSON)',
  },
  {
    key: 'AUDIT_REDACT_KEYS',
    defaultText: 'any of `password`, `passwd`, `secret`, `token`, `key`, `authorization`, `cookie`, `credential`',
    secret: false,
    description:
      'regular expression (case-insensitive, matched anywhere in the key) naming the argument keys to redact',
  },
  {
    key: 'AUDIT_ARGUMENTS_MAX_BYTES',
    defaultText: '`8192`',
    secret: false,
    description: 'larger (redacted) arguments are stored as their size and sha256 only',
  },
  {
    key: 'AUDIT_QUEUE_CAPACITY',
    defaultText: '`10000`',
    secret: false,
    description:
      'audit records held in memory before they are written (each holds about `AUDIT_ARGUMENTS_MAX_BYTES` at most); when full, the request that finds it full writes the whole queue to the spool itself (nothing is dropped)',
  },
  {
    key: 'AUDIT_BATCH_SIZE',
    defaultText: '`500`',
    secret: false,
    description: 'audit records written to the database per insert',
  },
  {
    key: 'AUDIT_FLUSH_INTERVAL_MS',
    defaultText: '`200`',
    secret: false,
    description:
      'how often queued audit records are written (and, during a database outage, how often replay is tried)',
  },
  {
    key: 'AUDIT_WRITE_TIMEOUT_MS',
    defaultText: '`10000`',
    secret: false,
    description: 'an audit insert slower than this is given up and its batch spooled to `$DATA_DIR/audit-spool`',
  },
  {
    key: 'AUDIT_SPOOL_MAX_BYTES',
    defaultText: '`1073741824` (1 GiB)',
    secret: false,
    description:
      'most the audit spool may hold on disk (split evenly between `serve --workers`); once it holds that much, `MCP_PREFIX` answers 503 and `/health/ready` fails with `audit` until replay brings it below; `0`: no limit',
  },
  {
    key: 'AUDIT_RETENTION_DAYS',
    defaultText: '`90`',
    secret: false,
    description:
      'audit records older than this are removed (the chain stays verifiable from an anchor); `0` keeps them forever',
  },
  {
    key: 'AUDIT_RETENTION_INTERVAL_MS',
    defaultText: '`3600000`',
    secret: false,
    description: 'how often the retention job runs; `0` turns it off',
  },
  {
    key: 'AUDIT_HMAC_KEY',
    defaultText: '—',
    secret: true,
    description:
      'key of the audit hash chain (HMAC-SHA256); without it the chain is plain SHA-256, which detects edits but not someone who recomputes the chain. `audit verify` needs the same key',
  },
  {
    key: 'METRICS_TOOL_LABELS_PER_SERVER',
    defaultText: '`50`',
    secret: false,
    description:
      'distinct `tool` label values per server on `/metrics`; a tool gets one once a call to it has succeeded, later tools (and names no call succeeded with) count as `other`',
  },
  {
    key: 'METRICS_SERVER_LABELS',
    defaultText: '`1000`',
    secret: false,
    description: 'distinct `server` label values on `/metrics`; later servers count as `other`',
  },
  {
    key: 'SHUTDOWN_GRACE_MS',
    defaultText: '`10000`',
    secret: false,
    description: 'how long in-flight requests may take to finish after SIGTERM before connections are cut',
  },
  {
    key: 'WORKERS',
    defaultText: '`1`',
    secret: false,
    description:
      '`serve` worker processes sharing the port (1 to 128, or `auto`: one per CPU); more than 1 needs `DATABASE_URL` and `REDIS_URL`',
  },
  {
    key: 'HEAP_GROWTH_PERCENT',
    defaultText: '`30`',
    secret: false,
    description:
      "how far (in percent) `serve` lets V8's heap grow past what the last full garbage collection kept before it collects again; `0` leaves it to V8, which lets it grow up to 4× (more memory, a little less CPU per call; see Performance)",
  },
  {
    key: 'RATE_LIMIT_ENABLED',
    defaultText: '`true`',
    secret: false,
    description: '`false` turns every `/mcp` rate limit off, the per-IP one included',
  },
  {
    key: 'RATE_LIMIT_FILE',
    defaultText: '—',
    secret: false,
    description:
      'JSON file of rate-limit policies: role tiers, per-server and per-tool budgets and costs, method costs, fail-closed policies (see Rate limits); the variables below win over it',
  },
  {
    key: 'RATE_LIMIT_PRINCIPAL',
    defaultText: '`600/60s`',
    secret: false,
    description:
      'budget of each caller (`tid:oid`, or `tid:app:clientId` for app-only callers), as `<count>/<window>` (`s`, `m`, `h`, `d`)',
  },
  {
    key: 'RATE_LIMIT_ADMIN',
    defaultText: '`3000/60s`',
    secret: false,
    description: 'budget of each caller holding `AUTH_ADMIN_ROLE` (instead of `RATE_LIMIT_PRINCIPAL`)',
  },
  {
    key: 'RATE_LIMIT_TENANT',
    defaultText: '`10000/60s`',
    secret: false,
    description: 'budget of all callers of one tenant together',
  },
  {
    key: 'TRUST_PROXY',
    defaultText: '— (none)',
    secret: false,
    description:
      'proxies in front of the gateway whose `X-Forwarded-For` is believed, so the per-IP limit, logs and audit see the client: a hop count (`1` to `10`), or a comma-separated list of addresses, CIDRs and `loopback`, `linklocal`, `uniquelocal`',
  },
  {
    key: 'RATE_LIMIT_IP',
    defaultText: '`1200/60s`',
    secret: false,
    description:
      'HTTP requests per client address under `MCP_PREFIX`, counted before the token is checked, in each replica (each worker under `--workers`); `off` turns it off',
  },
  {
    key: 'RATE_LIMIT_ON_REDIS_DOWN',
    defaultText: '`local`',
    secret: false,
    description:
      'while Redis does not answer: `local` (each replica limits alone, with `1/RATE_LIMIT_REPLICAS` of each budget) or `refuse` (429); a policy in `RATE_LIMIT_FILE` may choose its own',
  },
  {
    key: 'RATE_LIMIT_REPLICAS',
    defaultText: '`1`',
    secret: false,
    description:
      'replicas sharing the budgets; while Redis is down each one allows its share of every budget, split again among its `--workers`',
  },
  {
    key: 'RATE_LIMIT_REDIS_TIMEOUT_MS',
    defaultText: '`100`',
    secret: false,
    description: 'longest wait for Redis on one rate-limit decision before the insurance limiter decides',
  },
  {
    key: 'RATE_LIMIT_LEASE_PERCENT',
    defaultText: '`1`',
    secret: false,
    description:
      'largest lease of a budget a replica takes from Redis, in percent of the budget, to decide the next requests without a round trip; granted only while the budget is at most half spent; `0` asks Redis for every request',
  },
];

function isRegExp(value: string): boolean {
  try {
    new RegExp(value, 'i');
    return true;
  } catch {
    return false;
  }
}

function safeUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

function splitList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}
