import type { UpstreamErrorKind } from '../upstream/upstream-error';
import {
  countsAsUnreachable,
  type HealthState,
  type HealthStep,
  type HealthThresholds,
  initialHealth,
  nextHealth,
  type ProbeResult,
  UPSTREAM_ERROR_KINDS,
} from './health-state';

const THRESHOLDS: HealthThresholds = {
  unreachableAfter: 3,
  healthyAfter: 1,
  degradedLatencyMs: 1000,
  latencyWindow: 20,
};
const START = Date.UTC(2026, 0, 1);

/** The n-th probe's time: one second apart. */
function at(n: number): Date {
  return new Date(START + n * 1000);
}

function ok(n: number, latencyMs = 10): ProbeResult {
  return { ok: true, at: at(n), latencyMs };
}

function fail(n: number, kind: UpstreamErrorKind = 'connection_refused', message = 'connection refused'): ProbeResult {
  return { ok: false, at: at(n), kind, message };
}

/** Applies probes one after another from `from`; returns every step. */
function run(probes: ProbeResult[], thresholds: Partial<HealthThresholds> = {}, from = initialHealth(at(0))) {
  const steps: HealthStep[] = [];
  let state = from;
  for (const probe of probes) {
    const step = nextHealth(state, probe, { ...THRESHOLDS, ...thresholds });
    steps.push(step);
    state = step.state;
  }
  return { steps, state, statuses: steps.map((step) => step.state.status) };
}

function transitionsOf(steps: HealthStep[]): string[] {
  return steps.flatMap((step) => (step.transition ? [`${step.transition.from}->${step.transition.to}`] : []));
}

describe('nextHealth', () => {
  describe('from unknown', () => {
    it('a fast success makes the server healthy and records the latency', () => {
      const { steps, state } = run([ok(1, 12.5)]);
      expect(state).toEqual<HealthState>({
        status: 'healthy',
        consecutiveFailures: 0,
        consecutiveSuccesses: 1,
        lastCheckedAt: at(1),
        lastSuccessAt: at(1),
        lastFailureAt: null,
        lastError: null,
        lastErrorKind: null,
        recentLatencies: [12.5],
        latencyP50Ms: 12.5,
        latencyP95Ms: 12.5,
        changedAt: at(1),
      });
      expect(steps[0]?.transition).toEqual({
        from: 'unknown',
        to: 'healthy',
        reason: 'first probe succeeded in 12.5 ms',
        at: at(1),
      });
    });

    it('a first success is enough even when healthyAfter is higher: the server never failed', () => {
      expect(run([ok(1)], { healthyAfter: 3 }).statuses).toEqual(['healthy']);
    });

    it('a slow success makes it degraded', () => {
      const { steps } = run([ok(1, 1500)]);
      expect(steps[0]?.transition).toMatchObject({
        from: 'unknown',
        to: 'degraded',
        reason: expect.stringMatching(/^slow: the probe took 1500 ms \(over 1000 ms\)$/),
      });
    });

    it('a failure makes it degraded, with the error, its kind and the count', () => {
      const { steps, state } = run([fail(1)]);
      expect(state).toMatchObject({
        status: 'degraded',
        consecutiveFailures: 1,
        consecutiveSuccesses: 0,
        lastCheckedAt: at(1),
        lastFailureAt: at(1),
        lastSuccessAt: null,
        lastError: 'connection refused',
        lastErrorKind: 'connection_refused',
        recentLatencies: [],
        latencyP50Ms: null,
      });
      expect(steps[0]?.transition?.reason).toBe(
        'failing: 1 consecutive failed probe (connection_refused: connection refused)',
      );
    });

    it('a failure makes it unreachable at once when unreachableAfter is 1', () => {
      expect(run([fail(1)], { unreachableAfter: 1 }).statuses).toEqual(['unreachable']);
    });

    it('an auth failure makes it degraded, not failing', () => {
      const { state, steps } = run([fail(1, 'auth', 'the upstream answered HTTP 401')]);
      expect(state).toMatchObject({
        status: 'degraded',
        consecutiveFailures: 0,
        lastErrorKind: 'auth',
        lastFailureAt: at(1),
      });
      expect(steps[0]?.transition?.reason).toBe(
        'reachable, but the gateway cannot use it (auth: the upstream answered HTTP 401)',
      );
    });
  });

  describe('latency', () => {
    it('exactly the threshold is not slow; one above is', () => {
      expect(run([ok(1, 1000)]).statuses).toEqual(['healthy']);
      expect(run([ok(1, 1000.1)]).statuses).toEqual(['degraded']);
    });

    it('a healthy server turns degraded when slow and healthy again when fast', () => {
      const { statuses, steps } = run([ok(1), ok(2, 2000), ok(3, 2500), ok(4, 20)]);
      expect(statuses).toEqual(['healthy', 'degraded', 'degraded', 'healthy']);
      expect(transitionsOf(steps)).toEqual(['unknown->healthy', 'healthy->degraded', 'degraded->healthy']);
      expect(steps[3]?.transition?.reason).toBe('no longer slow: the probe took 20 ms');
    });

    it('keeps the last 20 successful latencies, untouched by failures, for p50 and p95', () => {
      const probes = Array.from({ length: 25 }, (_, i) => ok(i + 1, i + 1));
      const { state } = run([...probes, fail(26)]);
      expect(state.recentLatencies).toEqual(Array.from({ length: 20 }, (_, i) => i + 6));
      expect(state.latencyP50Ms).toBe(15);
      expect(state.latencyP95Ms).toBe(24);
    });

    it('uses the window size it is given', () => {
      expect(run([ok(1, 1), ok(2, 2), ok(3, 3)], { latencyWindow: 2 }).state.recentLatencies).toEqual([2, 3]);
    });
  });

  describe('failing', () => {
    it('healthy turns degraded at the first failure and unreachable at unreachableAfter in a row', () => {
      const { statuses, steps, state } = run([ok(1), fail(2), fail(3), fail(4), fail(5)]);
      expect(statuses).toEqual(['healthy', 'degraded', 'degraded', 'unreachable', 'unreachable']);
      expect(transitionsOf(steps)).toEqual(['unknown->healthy', 'healthy->degraded', 'degraded->unreachable']);
      expect(steps[3]?.transition?.reason).toBe(
        'unreachable: 3 consecutive failed probes (connection_refused: connection refused)',
      );
      expect(state.consecutiveFailures).toBe(4);
      expect(state.lastSuccessAt).toEqual(at(1));
    });

    it('failures that are not in a row never make it unreachable (intermittent)', () => {
      const { statuses } = run([ok(1), fail(2), fail(3), ok(4), fail(5), fail(6), ok(7)], { healthyAfter: 1 });
      expect(statuses).toEqual(['healthy', 'degraded', 'degraded', 'healthy', 'degraded', 'degraded', 'healthy']);
    });

    it('follows unreachableAfter', () => {
      expect(run([fail(1), fail(2), fail(3), fail(4), fail(5)], { unreachableAfter: 5 }).statuses).toEqual([
        'degraded',
        'degraded',
        'degraded',
        'degraded',
        'unreachable',
      ]);
    });

    it('keeps the newest error and kind', () => {
      const { state } = run([fail(1), fail(2, 'timeout', 'no answer within 500 ms')]);
      expect(state).toMatchObject({
        lastError: 'no answer within 500 ms',
        lastErrorKind: 'timeout',
        consecutiveFailures: 2,
      });
    });

    it('counts every kind but auth toward unreachable', () => {
      for (const kind of UPSTREAM_ERROR_KINDS) {
        expect(countsAsUnreachable(kind)).toBe(kind !== 'auth');
        const { statuses } = run([fail(1, kind), fail(2, kind), fail(3, kind)]);
        expect([kind, statuses.at(-1)]).toEqual([kind, kind === 'auth' ? 'degraded' : 'unreachable']);
      }
    });
  });

  describe('auth failures', () => {
    it('never make a server unreachable, however many in a row', () => {
      const refusals = Array.from({ length: 10 }, (_, i) => fail(i + 1, 'auth', 'the upstream answered HTTP 403'));
      const { statuses, state } = run(refusals);
      expect(new Set(statuses)).toEqual(new Set(['degraded']));
      expect(state.consecutiveFailures).toBe(0);
    });

    it('reset a run of reachability failures: the upstream answered', () => {
      const { statuses, state } = run([fail(1), fail(2), fail(3, 'auth'), fail(4), fail(5)]);
      expect(statuses).toEqual(['degraded', 'degraded', 'degraded', 'degraded', 'degraded']);
      expect(state.consecutiveFailures).toBe(2);
    });

    it('turn an unreachable server degraded', () => {
      const { steps } = run([fail(1), fail(2), fail(3), fail(4, 'auth')]);
      expect(transitionsOf(steps)).toEqual(['unknown->degraded', 'degraded->unreachable', 'unreachable->degraded']);
    });

    it('need healthyAfter successes to recover from, like any failure', () => {
      const { statuses } = run([ok(1), fail(2, 'auth'), ok(3), ok(4)], { healthyAfter: 2 });
      expect(statuses).toEqual(['healthy', 'degraded', 'degraded', 'healthy']);
    });
  });

  describe('recovery', () => {
    const unreachable = run([fail(1), fail(2), fail(3)]).state;

    it('one success makes an unreachable server healthy when healthyAfter is 1', () => {
      const { steps, state } = run([ok(4, 15)], {}, unreachable);
      expect(steps[0]?.transition).toEqual({
        from: 'unreachable',
        to: 'healthy',
        reason: 'recovered: 1 consecutive successful probe, the last in 15 ms',
        at: at(4),
      });
      expect(state).toMatchObject({ consecutiveFailures: 0, consecutiveSuccesses: 1, lastSuccessAt: at(4) });
    });

    it('with healthyAfter 3, the server is degraded (recovering) until the third success in a row', () => {
      const { statuses, steps } = run([ok(4), ok(5), ok(6), ok(7)], { healthyAfter: 3 }, unreachable);
      expect(statuses).toEqual(['degraded', 'degraded', 'healthy', 'healthy']);
      expect(steps[0]?.transition?.reason).toBe('recovering: 1 of 3 successful probes needed');
      expect(steps[2]?.transition?.reason).toBe('recovered: 3 consecutive successful probes, the last in 10 ms');
    });

    it('a failure during recovery starts the count again', () => {
      const { statuses } = run([ok(4), ok(5), fail(6), ok(7), ok(8), ok(9)], { healthyAfter: 3 }, unreachable);
      expect(statuses).toEqual(['degraded', 'degraded', 'degraded', 'degraded', 'degraded', 'healthy']);
    });

    it('a recovered but slow server is degraded', () => {
      const { steps } = run([ok(4, 5000)], {}, unreachable);
      expect(steps[0]?.transition).toMatchObject({ to: 'degraded', reason: expect.stringMatching(/^slow:/) });
    });

    it('keeps the last error for the record', () => {
      const { state } = run([ok(4)], {}, unreachable);
      expect(state).toMatchObject({
        lastError: 'connection refused',
        lastErrorKind: 'connection_refused',
        lastFailureAt: at(3),
      });
    });
  });

  describe('bookkeeping', () => {
    it('changes changedAt only with the status, and lastCheckedAt with every probe', () => {
      const { steps } = run([ok(1), ok(2), fail(3), fail(4)]);
      expect(steps.map((step) => step.state.changedAt)).toEqual([at(1), at(1), at(3), at(3)]);
      expect(steps.map((step) => step.state.lastCheckedAt)).toEqual([at(1), at(2), at(3), at(4)]);
      expect(steps.map((step) => step.transition !== undefined)).toEqual([true, false, true, false]);
    });

    it('does not modify the previous state', () => {
      const previous = run([ok(1), ok(2)]).state;
      const copy = structuredClone(previous);
      nextHealth(previous, fail(3), THRESHOLDS);
      nextHealth(previous, ok(3, 30), THRESHOLDS);
      expect(previous).toEqual(copy);
    });
  });
});
