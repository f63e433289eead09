import type { PinoLogger } from 'nestjs-pino';

/**
 * The log of something retried in the background (the audit writer's inserts, the catalog's reads): the first failure
 * of a run, as a warning with its error, and the success that ends the run, once each. A line at every retry would
 * be one, with its stack, every few hundred milliseconds for as long as an outage lasts; the metrics count retries.
 */
export class OutageLog {
  private failing = false;

  constructor(
    private readonly logger: Pick<PinoLogger, 'warn' | 'info'>,
    /** What the success after a run of failures says. */
    private readonly recoveredMessage: string,
  ) {}

  /** A failure: logged with `fields` when it starts a run. */
  failed(error: unknown, message: string, fields: Record<string, unknown> = {}): void {
    if (this.failing) return;
    this.failing = true;
    this.logger.warn({ err: error, ...fields }, message);
  }

  /** A success: logged with `fields` when it ends a run of failures. */
  succeeded(fields?: Record<string, unknown>): void {
    if (!this.failing) return;
    this.failing = false;
    if (fields) this.logger.info(fields, this.recoveredMessage);
    else this.logger.info(this.recoveredMessage);
  }
}
