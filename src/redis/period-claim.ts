import { createHash } from 'node:crypto';
import type { DatabaseConfig } from '../config/config';
import type { KeyValueStore } from './key-value-store';

/**
 * What names one deployment: its database (host, port and name; not credentials, which replicas may not
 * share). Two deployments on one Redis never take each other's turns.
 */
export function deploymentKey(database: DatabaseConfig): string {
  let identity: string;
  if (database.kind === 'postgres') {
    const url = new URL(database.url);
    identity = `${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } else identity = `embedded:${database.directory}`;
  return createHash('sha256').update(identity).digest('hex').slice(0, 16);
}

/**
 * Periodic work that one instance of a deployment should do per period, not
 * every replica: the first to claim a period gets it. Periods are wall-clock
 * slices of `periodMs`, so replicas agree on them without talking.
 */
export class PeriodClaim {
  constructor(
    private readonly store: KeyValueStore,
    private readonly name: string,
  ) {}

  /** True for the first claim of the current period in the whole deployment. */
  async claim(periodMs: number, now = Date.now()): Promise<boolean> {
    const period = Math.floor(now / periodMs);
    const count = await this.store.incrBy(`mcp-gateway:claim:${this.name}:${period}`, 1, periodMs * 2);
    return count === 1;
  }

  /**
   * Whether this instance does the current period's work: it claimed the period first, or the store could not be
   * asked (`unasked` hears why), and then every replica does the work, as a single instance would.
   */
  async ours(periodMs: number, unasked: (error: unknown) => void): Promise<boolean> {
    try {
      return await this.claim(periodMs);
    } catch (error) {
      unasked(error);
      return true;
    }
  }
}
