import { Inject, Injectable } from '@nestjs/common';
import { databaseFailureReason } from '../common/database-errors';
import { DATABASE_CONNECTION } from '../database/database.module';
import type { DatabaseConnection } from '../database/database';
import { PrismaService } from '../database/prisma.service';
import { KEY_VALUE_STORE, type KeyValueStore } from '../redis/key-value-store';
import { McpTraffic } from '../traffic/mcp-traffic';
import { DrainState } from './drain-state';

const CHECK_TIMEOUT_MS = 2_000;

export interface DependencyStatus {
  status: 'up' | 'down';
  kind: string;
  target?: string;
  error?: string;
}

export interface Readiness {
  status: 'ready' | 'unavailable' | 'draining';
  /** Names of the dependencies that did not answer, and `audit` while MCP requests are refused (a full audit spool). */
  failing: string[];
  checks: { database: DependencyStatus; redis: DependencyStatus; audit: DependencyStatus };
}

@Injectable()
export class HealthService {
  constructor(
    private readonly prisma: PrismaService,
    @Inject(DATABASE_CONNECTION) private readonly connection: DatabaseConnection,
    @Inject(KEY_VALUE_STORE) private readonly store: KeyValueStore,
    private readonly drain: DrainState,
    private readonly traffic: McpTraffic,
  ) {}

  async readiness(): Promise<Readiness> {
    const [database, redis] = await Promise.all([
      check(this.connection.kind, this.connection.description, () => this.prisma.ping(), databaseFailureReason),
      check(
        this.store.kind,
        undefined,
        () => this.store.ping(),
        (error) => (error as Error).message,
      ),
    ]);
    const halted = this.traffic.haltedReason;
    const audit: DependencyStatus = halted
      ? { status: 'down', kind: 'spool', error: halted }
      : { status: 'up', kind: 'spool' };
    const checks = { database, redis, audit };
    const failing = Object.entries(checks)
      .filter(([, result]) => result.status === 'down')
      .map(([name]) => name);
    const status = this.drain.isDraining ? 'draining' : failing.length > 0 ? 'unavailable' : 'ready';
    return { status, failing, checks };
  }
}

async function check(
  kind: string,
  target: string | undefined,
  probe: () => Promise<void>,
  reasonOf: (error: unknown) => string,
): Promise<DependencyStatus> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([probe(), timeout]);
    return { status: 'up', kind, ...(target ? { target } : {}) };
  } catch (error) {
    return { status: 'down', kind, ...(target ? { target } : {}), error: reasonOf(error) };
  } finally {
    clearTimeout(timer);
  }
}
