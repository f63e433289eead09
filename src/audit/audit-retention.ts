import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { AuditRepository, type ExpiryOptions, type ExpiryResult } from './audit.repository';

const DAY_MS = 86_400_000;

/**
 * Removes audit records older than AUDIT_RETENTION_DAYS every
 * AUDIT_RETENTION_INTERVAL_MS. Only the oldest part of each chain goes, and
 * the stream keeps the last removed hash as its anchor, so `audit verify`
 * still checks what remains. Replicas may run it at once: each stream's cut
 * is made under a row lock, a step of at most RETENTION_BATCH records at a
 * time (AuditRepository.expire).
 */
@Injectable()
export class AuditRetention implements OnApplicationBootstrap, OnModuleDestroy {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  /** Stops a pass between two steps at shutdown: a large backlog would otherwise hold the shutdown until it is cut. */
  private readonly stopping = new AbortController();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repository: AuditRepository,
    @InjectPinoLogger(AuditRetention.name) private readonly logger: PinoLogger,
  ) {}

  onApplicationBootstrap(): void {
    const { retentionDays, retentionIntervalMs } = this.config.audit;
    if (retentionDays === 0 || retentionIntervalMs === 0) return;
    this.timer = setInterval(() => {
      if (!this.running) {
        this.running = this.expire()
          .catch((error: unknown) => this.logger.warn({ err: error }, 'audit retention failed; next run retries'))
          .finally(() => (this.running = undefined));
      }
    }, retentionIntervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort();
    await this.running;
  }

  /** One pass; `now`, `batchSize` and `signal` are for tests. */
  async expire({ now = new Date(), ...options }: { now?: Date } & ExpiryOptions = {}): Promise<ExpiryResult> {
    const cutoff = new Date(now.getTime() - this.config.audit.retentionDays * DAY_MS);
    const result = await this.repository.expire(cutoff, { signal: this.stopping.signal, ...options });
    if (result.removed > 0) this.logger.info({ ...result, cutoff }, 'audit records past retention removed');
    return result;
  }
}
