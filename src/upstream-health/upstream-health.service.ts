import { setMaxListeners } from 'node:events';
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DomainError } from '../common/domain-error';
import type { AppConfig, UpstreamHealthConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { KEY_VALUE_STORE, type KeyValueStore } from '../redis/key-value-store';
import { deploymentKey, PeriodClaim } from '../redis/period-claim';
import { RegistryEvents, type RegistryEvent } from '../registry/registry-events';
import { RegistryErrors, type UnreadableServer, UnreadableServerError } from '../registry/registry.errors';
import { RegistryService } from '../registry/registry.service';
import { parseUpstreamTarget } from '../registry/server.schema';
import { UnreadableServerLog } from '../registry/unreadable-server-log';
import {
  type HealthState,
  type HealthStatus,
  type HealthThresholds,
  type HealthTransition,
  initialHealth,
  nextHealth,
  type ProbeResult,
} from './health-state';
import { LATENCY_WINDOW } from './latency';
import { ProbeScheduler } from './probe-scheduler';
import type { ProberView, ServerHealthDetail, ServerHealthList, ServerHealthView } from './upstream-health.dto';
import {
  PROBED_SERVER_STATUSES,
  type ServerWithHealth,
  type StoredServer,
  UpstreamHealthRepository,
} from './upstream-health.repository';
import { UpstreamProbe } from './upstream-probe';

/** Transitions shown with one server. */
const RECENT_TRANSITIONS = 20;

/** One recorded probe, as the service tells its listeners (metrics). */
export interface ProbeReport {
  serverId: string;
  slug: string;
  result: ProbeResult;
  /** The server's health after this probe. */
  status: HealthStatus;
}

/** What became of one probe request; a stored server the gateway cannot read is not probed, and answered as such. */
type ProbeOutcome = 'recorded' | 'missing' | 'not-probed' | 'abandoned' | UnreadableServer;

interface ProbeCounters {
  probes: number;
  failedProbes: Record<string, number>;
  transitions: Record<string, number>;
  abandoned: number;
}

/**
 * Keeps the health of every active and deprecated upstream: probes them in the
 * background (see ProbeScheduler), applies `nextHealth`, stores the state and
 * each status change, logs and counts the changes, and answers the API.
 */
@Injectable()
export class UpstreamHealthService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly settings: UpstreamHealthConfig;
  private readonly periodicWork: boolean;
  private readonly thresholds: HealthThresholds;
  private readonly scheduler: ProbeScheduler;
  private readonly counters: ProbeCounters = { probes: 0, failedProbes: {}, transitions: {}, abandoned: 0 };
  /** One probe per server at a time: a second request for the same server shares the first one's result. */
  private readonly inFlight = new Map<string, Promise<ProbeOutcome>>();
  /** Aborted on stop: probes under way give up at once and their results are dropped. */
  private readonly stopping = new AbortController();
  private unsubscribe?: () => void;
  private readonly probeListeners = new Set<(report: ProbeReport) => void>();
  private readonly unreadable: UnreadableServerLog;

  /** Which replica of the deployment probes each round. */
  private readonly rounds: PeriodClaim;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly repository: UpstreamHealthRepository,
    private readonly probe: UpstreamProbe,
    private readonly events: RegistryEvents,
    @InjectPinoLogger(UpstreamHealthService.name) private readonly logger: PinoLogger,
    @Inject(KEY_VALUE_STORE) store: KeyValueStore,
    private readonly registry: RegistryService,
  ) {
    this.settings = config.upstreamHealth;
    this.rounds = new PeriodClaim(store, `health-round:${deploymentKey(config.database)}`);
    this.periodicWork = config.periodicWork;
    this.unreadable = new UnreadableServerLog(
      logger,
      'a stored server the gateway cannot read is not probed until an admin repairs or deletes it',
    );
    // Every probe under way listens on it; there may be `concurrency` of them, more than the warning's default of 10.
    setMaxListeners(0, this.stopping.signal);
    this.thresholds = {
      unreachableAfter: this.settings.unreachableAfter,
      healthyAfter: this.settings.healthyAfter,
      degradedLatencyMs: this.settings.degradedLatencyMs,
      latencyWindow: LATENCY_WINDOW,
    };
    this.scheduler = new ProbeScheduler({
      intervalMs: this.settings.intervalMs,
      concurrency: this.settings.concurrency,
      listServers: () => this.serversOfOurRound(),
      probe: async (serverId) => {
        await this.probeOnce(serverId, { includeDisabled: false });
      },
      onError: (error, serverId) => {
        // Once stopping, the database may already be closed under a probe: expected, not worth an error line.
        if (this.stopping.signal.aborted)
          this.logger.debug({ err: error, serverId }, 'upstream health probe abandoned');
        else this.logger.error({ err: error, serverId }, 'upstream health probing failed');
      },
    });
  }

  onApplicationBootstrap(): void {
    if (this.settings.intervalMs <= 0) {
      this.logger.info('upstream health probing is off (HEALTH_PROBE_INTERVAL_MS=0)');
      return;
    }
    if (!this.periodicWork) {
      // One prober per machine: the first worker probes, and its results are everyone's (they are in the database).
      this.logger.info('upstream health probing is left to worker 1');
      return;
    }
    this.unsubscribe = this.events.on((event) => this.onRegistryChange(event));
    this.scheduler.start();
    this.logger.info(
      {
        intervalMs: this.settings.intervalMs,
        timeoutMs: this.settings.timeoutMs,
        concurrency: this.settings.concurrency,
      },
      'upstream health probing started',
    );
  }

  /** Does not wait for probes under way: they are abandoned, and their sessions close on their own. */
  onModuleDestroy(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.scheduler.stop();
    this.stopping.abort();
  }

  async list(status?: HealthStatus): Promise<ServerHealthList> {
    const rows = await this.repository.list(status);
    return { servers: rows.map(toView), prober: this.proberView() };
  }

  /** Each probed server's slug and current health, as stored: what `/metrics` shows, on every replica alike. */
  statuses(): Promise<{ slug: string; status: HealthStatus }[]> {
    return this.repository.statuses();
  }

  /** `ref`: the server's id, slug or name, as `/servers/{ref}` takes it. */
  async get(ref: string): Promise<ServerHealthDetail> {
    return this.detailById(await this.registry.idOf(ref), ref);
  }

  /** Probes one server now (whatever its registration status) and answers its updated health. */
  async probeNow(ref: string): Promise<ServerHealthDetail> {
    if (this.stopping.signal.aborted) throw new DomainError('service_unavailable', 'the gateway is stopping');
    const serverId = await this.registry.idOf(ref);
    let outcome = await this.probeOnce(serverId, { includeDisabled: true });
    // A background probe that was under way skipped a disabled server; this request asked for it explicitly.
    if (outcome === 'not-probed') outcome = await this.probeOnce(serverId, { includeDisabled: true });
    if (outcome === 'missing') throw RegistryErrors.notFound(ref);
    if (outcome === 'abandoned') throw new DomainError('service_unavailable', 'the gateway is stopping');
    if (typeof outcome === 'object') throw new UnreadableServerError(outcome);
    return this.detailById(serverId, ref);
  }

  /** Calls `listener` after each recorded probe; returns the function that stops it. */
  onProbe(listener: (report: ProbeReport) => void): () => void {
    this.probeListeners.add(listener);
    return () => this.probeListeners.delete(listener);
  }

  proberView(): ProberView {
    const { rounds, roundsSkipped } = this.scheduler.counters;
    return {
      enabled: this.settings.intervalMs > 0,
      intervalMs: this.settings.intervalMs,
      timeoutMs: this.settings.timeoutMs,
      concurrency: this.settings.concurrency,
      unreachableAfter: this.settings.unreachableAfter,
      healthyAfter: this.settings.healthyAfter,
      degradedLatencyMs: this.settings.degradedLatencyMs,
      counters: {
        rounds,
        roundsSkipped,
        probes: this.counters.probes,
        failedProbes: { ...this.counters.failedProbes },
        transitions: { ...this.counters.transitions },
        abandoned: this.counters.abandoned,
      },
    };
  }

  /**
   * What this round probes: every server in the one replica of the deployment that claims the round first (with
   * Redis), nothing in the others, so that each upstream is probed once per interval whatever the replica count.
   * Their health is in the database, and each probe carries on from it, whichever replica made the last one.
   */
  private async serversOfOurRound(): Promise<string[]> {
    const ours = await this.rounds.ours(this.settings.intervalMs, (error) =>
      this.logger.warn({ err: error }, 'could not claim the health probe round; probing anyway'),
    );
    return ours ? this.repository.listProbedServerIds() : [];
  }

  private onRegistryChange(event: RegistryEvent): void {
    switch (event.type) {
      case 'created':
      case 'updated':
        this.scheduler.request(event.serverId);
        return;
      case 'deleted':
        // Its rows are gone with it (cascade); a probe under way finds that out when it tries to record.
        this.scheduler.forget(event.serverId);
        return;
    }
  }

  private probeOnce(serverId: string, options: { includeDisabled: boolean }): Promise<ProbeOutcome> {
    const running = this.inFlight.get(serverId);
    if (running) return running;
    const probing = this.probeAndRecord(serverId, options).finally(() => this.inFlight.delete(serverId));
    this.inFlight.set(serverId, probing);
    return probing;
  }

  private async probeAndRecord(serverId: string, options: { includeDisabled: boolean }): Promise<ProbeOutcome> {
    const signal = this.stopping.signal;
    if (signal.aborted) return 'abandoned';
    const row = await this.repository.find(serverId);
    if (!row) return 'missing';
    const { server } = row;
    // Its own fault, not the upstream's: recorded as a failed probe it would turn unreachable, kind `other`.
    const parsed = parseUpstreamTarget(server);
    if ('problems' in parsed) {
      this.unreadable.report(server, parsed.problems);
      const { id, name, slug, url, revision, createdAt } = server;
      return { id, name, slug, url, revision, createdAt, problems: parsed.problems };
    }
    if (!options.includeDisabled && !(PROBED_SERVER_STATUSES as readonly string[]).includes(server.status)) {
      return 'not-probed';
    }
    const { target } = parsed;
    const result = await this.probe.run(target, {
      timeoutMs: this.settings.timeoutMs,
      signal,
      unauthenticated: target.auth.type === 'entra-obo',
    });
    if (signal.aborted) {
      this.counters.abandoned++;
      return 'abandoned';
    }
    const previous = row.health ?? initialHealth(result.at);
    const { state, transition } = nextHealth(previous, result, this.thresholds);
    if (!(await this.repository.save(serverId, state, transition))) {
      this.counters.abandoned++;
      return 'missing';
    }
    this.count(result, transition);
    this.report({ serverId, slug: server.slug, result, status: state.status });
    if (!result.ok) {
      this.logger.debug(
        { serverId, slug: server.slug, kind: result.kind, error: result.message },
        'upstream probe failed',
      );
    }
    if (transition) this.logTransition(server, transition, state);
    return 'recorded';
  }

  private count(result: ProbeResult, transition: HealthTransition | undefined): void {
    this.counters.probes++;
    if (!result.ok) this.counters.failedProbes[result.kind] = (this.counters.failedProbes[result.kind] ?? 0) + 1;
    if (transition) {
      const key = `${transition.from}->${transition.to}`;
      this.counters.transitions[key] = (this.counters.transitions[key] ?? 0) + 1;
    }
  }

  private report(report: ProbeReport): void {
    for (const listener of this.probeListeners) {
      try {
        listener(report);
      } catch (error) {
        this.logger.error({ err: error, serverId: report.serverId }, 'an upstream probe listener failed');
      }
    }
  }

  private logTransition(server: StoredServer, transition: HealthTransition, state: HealthState): void {
    const fields = {
      serverId: server.id,
      slug: server.slug,
      from: transition.from,
      to: transition.to,
      reason: transition.reason,
      consecutiveFailures: state.consecutiveFailures,
      lastErrorKind: state.lastErrorKind,
    };
    if (transition.to === 'healthy') this.logger.info(fields, 'upstream health changed');
    else this.logger.warn(fields, 'upstream health changed');
  }

  private async detailById(serverId: string, ref: string): Promise<ServerHealthDetail> {
    const row = await this.repository.find(serverId);
    if (!row) throw RegistryErrors.notFound(ref);
    return this.detailOf(row);
  }

  private async detailOf(row: ServerWithHealth): Promise<ServerHealthDetail> {
    const transitions = await this.repository.recentTransitions(row.server.id, RECENT_TRANSITIONS);
    return {
      ...toView(row),
      transitions: transitions.map((t) => ({ from: t.from, to: t.to, reason: t.reason, at: t.at.toISOString() })),
    };
  }
}

function toView({ server, health }: ServerWithHealth): ServerHealthView {
  return {
    id: server.id,
    slug: server.slug,
    name: server.name,
    serverStatus: server.status,
    status: health?.status ?? 'unknown',
    consecutiveFailures: health?.consecutiveFailures ?? 0,
    consecutiveSuccesses: health?.consecutiveSuccesses ?? 0,
    lastCheckedAt: iso(health?.lastCheckedAt),
    lastSuccessAt: iso(health?.lastSuccessAt),
    lastFailureAt: iso(health?.lastFailureAt),
    lastError: health?.lastError ?? null,
    lastErrorKind: health?.lastErrorKind ?? null,
    latencyP50Ms: health?.latencyP50Ms ?? null,
    latencyP95Ms: health?.latencyP95Ms ?? null,
    changedAt: iso(health?.changedAt),
  };
}

function iso(date: Date | null | undefined): string | null {
  return date ? date.toISOString() : null;
}
