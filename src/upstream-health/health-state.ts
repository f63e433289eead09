import type { UpstreamErrorKind } from '../upstream/upstream-error';
import { appendLatency, percentile } from './latency';

export const HEALTH_STATUSES = ['unknown', 'healthy', 'degraded', 'unreachable'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export { UPSTREAM_ERROR_KINDS } from '../upstream/upstream-error';

export interface HealthThresholds {
  /** Consecutive reachability failures that make a server `unreachable`. */
  unreachableAfter: number;
  /** Consecutive successes that make a server that failed `healthy` again. */
  healthyAfter: number;
  /** A successful probe slower than this makes the server `degraded`. */
  degradedLatencyMs: number;
  /** Successful probe latencies kept for the percentiles. */
  latencyWindow: number;
}

/** What one probe learned. */
export type ProbeResult =
  { ok: true; at: Date; latencyMs: number } | { ok: false; at: Date; kind: UpstreamErrorKind; message: string };

/** The prober's view of one upstream, as stored. */
export interface HealthState {
  status: HealthStatus;
  consecutiveFailures: number;
  consecutiveSuccesses: number;
  lastCheckedAt: Date | null;
  lastSuccessAt: Date | null;
  /** Any failed probe, whether or not it counted toward `unreachable`. */
  lastFailureAt: Date | null;
  lastError: string | null;
  lastErrorKind: UpstreamErrorKind | null;
  /** Latencies of recent successful probes in ms, newest last. */
  recentLatencies: number[];
  latencyP50Ms: number | null;
  latencyP95Ms: number | null;
  /** When `status` last changed (or the state was created). */
  changedAt: Date;
}

export interface HealthTransition {
  from: HealthStatus;
  to: HealthStatus;
  reason: string;
  at: Date;
}

export interface HealthStep {
  state: HealthState;
  /** Present when the status changed. */
  transition?: HealthTransition;
}

export function initialHealth(at: Date): HealthState {
  return {
    status: 'unknown',
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
    lastCheckedAt: null,
    lastSuccessAt: null,
    lastFailureAt: null,
    lastError: null,
    lastErrorKind: null,
    recentLatencies: [],
    latencyP50Ms: null,
    latencyP95Ms: null,
    changedAt: at,
  };
}

/**
 * Whether a failure of this kind says the upstream cannot be reached. An
 * `auth` failure (401/403, or a secret the gateway lacks) means the upstream
 * answered, or would have, had the gateway been able to authenticate: it is
 * up but unusable, which is `degraded`, never `unreachable`.
 */
export function countsAsUnreachable(kind: UpstreamErrorKind): boolean {
  return kind !== 'auth';
}

/**
 * The state after one probe. Pure: the same inputs always give the same step.
 *
 * - success: failures reset; `healthy`, unless the server failed since its
 *   last `healthyAfter` successes (then `degraded`, recovering) or the probe
 *   was slower than `degradedLatencyMs` (then `degraded`, slow);
 * - reachability failure: successes reset; `unreachable` from
 *   `unreachableAfter` consecutive failures on, `degraded` (intermittent) before;
 * - auth failure: reachable, so both counters reset and the server is `degraded`.
 */
export function nextHealth(previous: HealthState, probe: ProbeResult, thresholds: HealthThresholds): HealthStep {
  const { status, reason, ...next } = probe.ok
    ? afterSuccess(previous, probe, thresholds)
    : countsAsUnreachable(probe.kind)
      ? afterFailure(previous, probe, thresholds)
      : afterRefusal(probe);
  const changed = status !== previous.status;
  const state: HealthState = {
    ...previous,
    ...next,
    status,
    lastCheckedAt: probe.at,
    changedAt: changed ? probe.at : previous.changedAt,
  };
  return changed ? { state, transition: { from: previous.status, to: status, reason, at: probe.at } } : { state };
}

type Outcome = Partial<HealthState> & { status: HealthStatus; reason: string };

function afterSuccess(
  previous: HealthState,
  probe: Extract<ProbeResult, { ok: true }>,
  thresholds: HealthThresholds,
): Outcome {
  const successes = previous.consecutiveSuccesses + 1;
  const recentLatencies = appendLatency(previous.recentLatencies, probe.latencyMs, thresholds.latencyWindow);
  const common = {
    consecutiveFailures: 0,
    consecutiveSuccesses: successes,
    lastSuccessAt: probe.at,
    recentLatencies,
    latencyP50Ms: percentile(recentLatencies, 50) ?? null,
    latencyP95Ms: percentile(recentLatencies, 95) ?? null,
  };
  // Successes reset on every failure, so a short streak after a failure is a recovery still under way.
  const recovering = previous.lastFailureAt !== null && successes < thresholds.healthyAfter;
  if (recovering) {
    return {
      ...common,
      status: 'degraded',
      reason: `recovering: ${successes} of ${thresholds.healthyAfter} successful probes needed`,
    };
  }
  const took = `${formatMs(probe.latencyMs)} ms`;
  if (probe.latencyMs > thresholds.degradedLatencyMs) {
    return {
      ...common,
      status: 'degraded',
      reason: `slow: the probe took ${took} (over ${thresholds.degradedLatencyMs} ms)`,
    };
  }
  const reason =
    previous.status === 'unknown'
      ? `first probe succeeded in ${took}`
      : previous.lastFailureAt !== null && previous.consecutiveSuccesses < thresholds.healthyAfter
        ? `recovered: ${successes} consecutive successful probe${successes === 1 ? '' : 's'}, the last in ${took}`
        : `no longer slow: the probe took ${took}`;
  return { ...common, status: 'healthy', reason };
}

function afterFailure(
  previous: HealthState,
  probe: Extract<ProbeResult, { ok: false }>,
  thresholds: HealthThresholds,
): Outcome {
  const failures = previous.consecutiveFailures + 1;
  const status = failures >= thresholds.unreachableAfter ? 'unreachable' : 'degraded';
  const counted = `${failures} consecutive failed probe${failures === 1 ? '' : 's'}`;
  return {
    consecutiveFailures: failures,
    consecutiveSuccesses: 0,
    lastFailureAt: probe.at,
    lastError: probe.message,
    lastErrorKind: probe.kind,
    status,
    reason: `${status === 'unreachable' ? 'unreachable' : 'failing'}: ${counted} (${probe.kind}: ${probe.message})`,
  };
}

function afterRefusal(probe: Extract<ProbeResult, { ok: false }>): Outcome {
  return {
    consecutiveFailures: 0,
    consecutiveSuccesses: 0,
    lastFailureAt: probe.at,
    lastError: probe.message,
    lastErrorKind: probe.kind,
    status: 'degraded',
    reason: `reachable, but the gateway cannot use it (${probe.kind}: ${probe.message})`,
  };
}

function formatMs(ms: number): string {
  return String(Math.round(ms * 10) / 10);
}
