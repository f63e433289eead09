import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import type { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.module';
import { AuditRepository, type ExpiryResult } from './audit.repository';

const DAY_MS = 86_400_000;

/**
 * Removes audit records older than AUDIT_RETENTION_DAYS every
 * AUDIT_RETENTION_INTERVAL_MS. Only the oldest part of each chain goes, and
 * the stream keeps the last removed hash as its anchor, so `audit verify`
 * still checks what remains. Replicas may run it at once: each stream's cut
 * is made under a row lock.
 */
@Injectable()
export class AuditRetention implements OnApplicationBootstrap, OnModuleDestroy {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

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
    await this.running;
  }

  /** One pass; `now` is for tests. */
  async expire(now = new Date()): Promise<ExpiryResult> {
    const cutoff = new Date(now.getTime() - this.config.audit.retentionDays * DAY_MS);
    const result = await this.repository.expire(cutoff);
    if (result.removed > 0) this.logger.info({ ...result, cutoff }, 'audit records past retention removed');
    return result;
  }
}
