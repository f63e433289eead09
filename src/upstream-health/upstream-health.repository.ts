import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import type { ServerHealth } from '../generated/prisma/client';
import type { UpstreamErrorKind } from '../upstream/upstream-error';
import {
  HEALTH_STATUSES,
  type HealthState,
  type HealthStatus,
  type HealthTransition,
  UPSTREAM_ERROR_KINDS,
} from './health-state';

/** Registry statuses the prober watches; `disabled` servers are left alone. */
export const PROBED_SERVER_STATUSES = ['active', 'deprecated'] as const;

/** A registered server as the prober needs it; its JSON fields are as stored, unchecked (readStoredFields). */
export interface StoredServer {
  id: string;
  slug: string;
  name: string;
  status: string;
  url: string;
  transport: string;
  auth: unknown;
  timeouts: unknown;
  toolRules: unknown;
  revision: number;
  createdAt: Date;
}

export interface ServerWithHealth {
  server: StoredServer;
  /** Undefined until the first probe is recorded. */
  health?: HealthState;
}

const ERROR_KINDS: ReadonlySet<string> = new Set(UPSTREAM_ERROR_KINDS);

const SERVER_FIELDS = {
  id: true,
  slug: true,
  name: true,
  status: true,
  url: true,
  transport: true,
  auth: true,
  timeouts: true,
  toolRules: true,
  revision: true,
  createdAt: true,
} as const;

/** Health rows and transitions of upstream servers. */
@Injectable()
export class UpstreamHealthRepository {
  constructor(private readonly prisma: PrismaService) {}

  async listProbedServerIds(): Promise<string[]> {
    const rows = await this.prisma.server.findMany({
      where: { status: { in: [...PROBED_SERVER_STATUSES] } },
      select: { id: true },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    return rows.map((row) => row.id);
  }

  async find(serverId: string): Promise<ServerWithHealth | undefined> {
    const row = await this.prisma.server.findUnique({
      where: { id: serverId },
      select: { ...SERVER_FIELDS, health: true },
    });
    return row ? withHealth(row) : undefined;
  }

  /** Servers with their health in registration order; `status` filters on the health status (`unknown` includes never probed). */
  async list(status?: HealthStatus): Promise<ServerWithHealth[]> {
    const where =
      status === undefined
        ? {}
        : status === 'unknown'
          ? { OR: [{ health: { is: null } }, { health: { is: { status } } }] }
          : { health: { is: { status } } };
    const rows = await this.prisma.server.findMany({
      where,
      select: { ...SERVER_FIELDS, health: true },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    return rows.map(withHealth);
  }

  /** Each probed server's slug and health status, in registration order: what `/metrics` reads at every scrape. */
  async statuses(): Promise<{ slug: string; status: HealthStatus }[]> {
    const rows = await this.prisma.serverHealth.findMany({
      select: { status: true, server: { select: { slug: true } } },
      orderBy: [{ server: { createdAt: 'asc' } }, { serverId: 'asc' }],
    });
    return rows.map((row) => ({ slug: row.server.slug, status: toStatus(row.status) }));
  }

  async recentTransitions(serverId: string, limit: number): Promise<HealthTransition[]> {
    const rows = await this.prisma.serverHealthTransition.findMany({
      where: { serverId },
      orderBy: [{ at: 'desc' }, { id: 'desc' }],
      take: limit,
    });
    return rows.map((row) => ({ from: toStatus(row.from), to: toStatus(row.to), reason: row.reason, at: row.at }));
  }

  /**
   * Stores the state and, when the status changed, the transition, together.
   * False when the server no longer exists (deleted while it was probed).
   */
  async save(serverId: string, state: HealthState, transition?: HealthTransition): Promise<boolean> {
    const data = { ...state };
    try {
      await this.prisma.$transaction([
        this.prisma.serverHealth.upsert({ where: { serverId }, create: { serverId, ...data }, update: data }),
        ...(transition
          ? [
              this.prisma.serverHealthTransition.create({
                data: {
                  serverId,
                  from: transition.from,
                  to: transition.to,
                  reason: transition.reason,
                  at: transition.at,
                },
              }),
            ]
          : []),
      ]);
      return true;
    } catch (error) {
      if (isPrismaError(error, ['P2003', 'P2025'])) return false;
      throw error;
    }
  }
}

function withHealth(row: StoredServer & { health: ServerHealth | null }): ServerWithHealth {
  const { health, ...server } = row;
  return health ? { server, health: toHealthState(health) } : { server };
}

function toHealthState(row: ServerHealth): HealthState {
  return {
    status: toStatus(row.status),
    consecutiveFailures: row.consecutiveFailures,
    consecutiveSuccesses: row.consecutiveSuccesses,
    lastCheckedAt: row.lastCheckedAt,
    lastSuccessAt: row.lastSuccessAt,
    lastFailureAt: row.lastFailureAt,
    lastError: row.lastError,
    lastErrorKind: row.lastErrorKind === null ? null : toErrorKind(row.lastErrorKind),
    recentLatencies: row.recentLatencies ?? [],
    latencyP50Ms: row.latencyP50Ms,
    latencyP95Ms: row.latencyP95Ms,
    changedAt: row.changedAt,
  };
}

function toStatus(value: string): HealthStatus {
  return (HEALTH_STATUSES as readonly string[]).includes(value) ? (value as HealthStatus) : 'unknown';
}

function toErrorKind(value: string): UpstreamErrorKind {
  return ERROR_KINDS.has(value) ? (value as UpstreamErrorKind) : 'other';
}

function isPrismaError(error: unknown, codes: string[]): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && codes.includes(code);
}
