import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import type { z } from 'zod';
import { clientEnvSchema, envSchema, MAX_WORKERS, type ParsedEnv } from './config.schema';
import { buildRateLimitPolicy, type RateLimitPolicy, RateLimitFileError } from '../ratelimit/rate-limit-policy';

export type DatabaseConfig =
  { kind: 'postgres'; url: string; poolSize: number; queryTimeoutMs: number } | { kind: 'embedded'; directory: string };

export interface AuthConfig {
  mode: 'entra' | 'dev';
  tenantId?: string;
  clientId?: string;
  audiences: string[];
  allowedTenants: string[];
  authorityHost: string;
  clientSecret?: string;
  /** PEM file with the app registration's private key and certificate (preferred over the secret). */
  clientCertificatePath?: string;
  acceptV1Tokens: boolean;
  jwksCacheMaxAgeMs: number;
  clockToleranceMs: number;
  /** Scopes every delegated token must carry, as configured (short names, or full scope strings). */
  requiredScopes: string[];
  adminRole: string;
  /** Roles that see a server registered without `allowedRoles` (none: admins only). */
  defaultRoles: string[];
}

export interface UpstreamConfig {
  allowedHosts: string[];
  deniedHosts: string[];
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /**
   * The environment as it was at start, only for resolving the variables that
   * registered servers name for their static header secrets.
   */
  secretSource: EnvSource;
}

export interface UpstreamHealthConfig {
  intervalMs: number;
  timeoutMs: number;
  concurrency: number;
  unreachableAfter: number;
  healthyAfter: number;
  degradedLatencyMs: number;
}

export interface AuditConfig {
  arguments: 'off' | 'redacted' | 'hash';
  /** Source of a case-insensitive regular expression over argument keys. */
  redactKeys: string;
  argumentsMaxBytes: number;
  queueCapacity: number;
  batchSize: number;
  flushIntervalMs: number;
  writeTimeoutMs: number;
  /** 0: records are kept forever. */
  retentionDays: number;
  /** 0: the retention job does not run. */
  retentionIntervalMs: number;
  hmacKey?: string;
  /** Where batches the database could not take wait: `$DATA_DIR/audit-spool`. */
  spoolDir: string;
  /** Most bytes the spool may hold before MCP requests are refused; 0: no limit. */
  spoolMaxBytes: number;
}

export interface AppConfig {
  host: string;
  port: number;
  publicUrl: string;
  apiPrefix: string;
  mcpPrefix: string;
  dataDir: string;
  database: DatabaseConfig;
  redisUrl?: string;
  /** Longest wait for Redis to answer one command (REDIS_COMMAND_TIMEOUT_MS): it fails then, as if Redis were away. */
  redisCommandTimeoutMs: number;
  auth: AuthConfig;
  upstream: UpstreamConfig;
  discoveryIntervalMs: number;
  upstreamHealth: UpstreamHealthConfig;
  maxBodyBytes: number;
  /** Express's `trust proxy`: hops, or the proxies' addresses; undefined: the TCP peer is the client. */
  trustProxy?: number | string[];
  mcp: { sessionIdleMs: number; stateless: boolean; allowedHosts: string[]; allowedOrigins: string[] };
  /** Cardinality caps of `/metrics`. */
  metrics: { toolLabelsPerServer: number; serverLabels: number };
  logLevel: ParsedEnv['LOG_LEVEL'];
  shutdownGraceMs: number;
  audit: AuditConfig;
  nodeEnv?: string;
  /** `serve` processes on the one port (`auto` resolved to the CPU count, at most MAX_WORKERS). */
  workers: number;
  /** V8's heap growing factor, as a percentage over 1 (src/cli/gc-tuning.ts); 0: V8's own. */
  heapGrowthPercent: number;
  /**
   * Whether this process runs the periodic discovery sweep and health probing.
   * True but in `serve --workers N` workers other than the first: one machine probes once.
   */
  periodicWork: boolean;
  rateLimit: RateLimitPolicy;
}

/** Raised when the environment does not satisfy the schema; one line per bad key. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((line) => `  ${line}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export type EnvSource = Readonly<Record<string, string | undefined>>;

/**
 * Parses the environment once. `overrides` (from CLI flags) win over `env`.
 * Empty strings count as unset, as Kubernetes often renders them.
 */
export function loadConfig(env: EnvSource, overrides: EnvSource = {}): AppConfig {
  const result = envSchema.safeParse(merge(env, overrides));
  if (!result.success) throw configError(result.error);
  if (result.data.AUTH_MODE === 'dev' && result.data.NODE_ENV === 'production') {
    // Tokens anyone with DATA_DIR can mint must never guard a production gateway.
    throw new ConfigError(['AUTH_MODE: dev is refused when NODE_ENV is production']);
  }
  let rateLimit: RateLimitPolicy;
  try {
    rateLimit = buildRateLimitPolicy(result.data, result.data.AUTH_ADMIN_ROLE);
  } catch (error) {
    if (!(error instanceof RateLimitFileError)) throw error;
    throw new ConfigError(error.problems.map((problem) => `RATE_LIMIT_FILE: ${problem}`));
  }
  return toAppConfig(result.data, { ...env }, rateLimit);
}

/** What the `servers …` commands need to reach a running gateway's admin API. */
export interface GatewayClientConfig {
  /** The gateway's base URL, without a trailing slash. */
  gatewayUrl: string;
  apiPrefix: string;
}

/**
 * The two keys the `servers …` commands read (API_PREFIX by the same rule as `serve`): a client need not satisfy
 * the gateway's configuration (its rate-limit file, say), nor the gateway MCP_GATEWAY_URL, which only they read.
 */
export function loadGatewayClientConfig(env: EnvSource, overrides: EnvSource = {}): GatewayClientConfig {
  const result = clientEnvSchema.safeParse(merge(env, overrides));
  if (!result.success) throw configError(result.error);
  return { gatewayUrl: result.data.MCP_GATEWAY_URL.replace(/\/+$/, ''), apiPrefix: result.data.API_PREFIX };
}

/** `overrides` over `env`; empty strings count as unset. */
function merge(env: EnvSource, overrides: EnvSource): Record<string, string> {
  const merged: Record<string, string> = {};
  for (const source of [env, overrides]) {
    for (const [key, value] of Object.entries(source)) {
      if (value !== undefined && value !== '') merged[key] = value;
    }
  }
  return merged;
}

/** The issue path names the key; the message is the rule. Values are never echoed. */
function configError(error: z.ZodError): ConfigError {
  const problems = error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
  return new ConfigError([...new Set(problems)]);
}

function toAppConfig(env: ParsedEnv, secretSource: EnvSource, rateLimit: RateLimitPolicy): AppConfig {
  const dataDir = path.resolve(env.DATA_DIR);
  const clientId = env.AZURE_CLIENT_ID;
  return {
    host: env.HOST,
    port: env.PORT,
    publicUrl: (env.PUBLIC_URL ?? `http://localhost:${env.PORT}`).replace(/\/+$/, ''),
    apiPrefix: env.API_PREFIX,
    mcpPrefix: env.MCP_PREFIX,
    dataDir,
    database: env.DATABASE_URL
      ? {
          kind: 'postgres',
          url: env.DATABASE_URL,
          poolSize: env.DATABASE_POOL_SIZE,
          queryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS,
        }
      : { kind: 'embedded', directory: path.join(dataDir, 'pgdata') },
    redisUrl: env.REDIS_URL,
    redisCommandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
    auth: {
      mode: env.AUTH_MODE,
      tenantId: env.AZURE_TENANT_ID,
      clientId,
      audiences: env.AZURE_AUDIENCES ?? (clientId ? [clientId, `api://${clientId}`] : []),
      allowedTenants: env.AZURE_ALLOWED_TENANTS ?? (env.AZURE_TENANT_ID ? [env.AZURE_TENANT_ID] : []),
      authorityHost: env.AZURE_AUTHORITY_HOST.replace(/\/+$/, ''),
      clientSecret: env.AZURE_CLIENT_SECRET,
      clientCertificatePath: env.AZURE_CLIENT_CERTIFICATE_PATH
        ? path.resolve(env.AZURE_CLIENT_CERTIFICATE_PATH)
        : undefined,
      acceptV1Tokens: env.AZURE_ACCEPT_V1_TOKENS,
      jwksCacheMaxAgeMs: env.AZURE_JWKS_CACHE_MAX_AGE_MS,
      clockToleranceMs: env.AUTH_CLOCK_TOLERANCE_MS,
      requiredScopes: env.AUTH_REQUIRED_SCOPES,
      adminRole: env.AUTH_ADMIN_ROLE,
      defaultRoles: env.AUTH_DEFAULT_ROLES ?? [],
    },
    upstream: {
      allowedHosts: env.UPSTREAM_ALLOWED_HOSTS ?? [],
      deniedHosts: env.UPSTREAM_DENIED_HOSTS ?? [],
      connectTimeoutMs: env.UPSTREAM_CONNECT_TIMEOUT_MS,
      requestTimeoutMs: env.UPSTREAM_REQUEST_TIMEOUT_MS,
      secretSource,
    },
    discoveryIntervalMs: env.DISCOVERY_INTERVAL_MS,
    upstreamHealth: {
      intervalMs: env.HEALTH_PROBE_INTERVAL_MS,
      timeoutMs: env.HEALTH_PROBE_TIMEOUT_MS,
      concurrency: env.HEALTH_PROBE_CONCURRENCY,
      unreachableAfter: env.HEALTH_UNREACHABLE_AFTER,
      healthyAfter: env.HEALTH_HEALTHY_AFTER,
      degradedLatencyMs: env.HEALTH_DEGRADED_LATENCY_MS,
    },
    logLevel: env.LOG_LEVEL,
    maxBodyBytes: env.MAX_BODY_BYTES,
    ...(env.TRUST_PROXY !== undefined ? { trustProxy: env.TRUST_PROXY } : {}),
    mcp: {
      sessionIdleMs: env.MCP_SESSION_IDLE_MS,
      stateless: env.MCP_STATELESS === 'true',
      allowedHosts: env.MCP_ALLOWED_HOSTS ?? [],
      allowedOrigins: env.MCP_ALLOWED_ORIGINS ?? [],
    },
    metrics: { toolLabelsPerServer: env.METRICS_TOOL_LABELS_PER_SERVER, serverLabels: env.METRICS_SERVER_LABELS },
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    audit: {
      arguments: env.AUDIT_ARGUMENTS,
      redactKeys: env.AUDIT_REDACT_KEYS,
      argumentsMaxBytes: env.AUDIT_ARGUMENTS_MAX_BYTES,
      queueCapacity: env.AUDIT_QUEUE_CAPACITY,
      batchSize: env.AUDIT_BATCH_SIZE,
      flushIntervalMs: env.AUDIT_FLUSH_INTERVAL_MS,
      writeTimeoutMs: env.AUDIT_WRITE_TIMEOUT_MS,
      retentionDays: env.AUDIT_RETENTION_DAYS,
      retentionIntervalMs: env.AUDIT_RETENTION_INTERVAL_MS,
      hmacKey: env.AUDIT_HMAC_KEY,
      spoolDir: path.join(dataDir, 'audit-spool'),
      spoolMaxBytes: env.AUDIT_SPOOL_MAX_BYTES,
    },
    nodeEnv: env.NODE_ENV,
    heapGrowthPercent: env.HEAP_GROWTH_PERCENT,
    workers: env.WORKERS === 'auto' ? Math.min(MAX_WORKERS, availableParallelism()) : Number(env.WORKERS),
    periodicWork: true,
    rateLimit,
  };
}

/** Describes where the data lives without revealing credentials, for logs and /health. */
export function describeDatabase(database: DatabaseConfig): string {
  if (database.kind === 'embedded') return `embedded PGlite at ${database.directory}`;
  const url = new URL(database.url);
  return `postgresql://${url.host}${url.pathname}`;
}

export function describeRedis(redisUrl: string | undefined): string {
  if (!redisUrl) return 'in-process (single instance only)';
  const url = new URL(redisUrl);
  return `${url.protocol}//${url.host}${url.pathname}`;
}
