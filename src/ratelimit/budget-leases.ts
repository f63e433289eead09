import { type Budget, type Charge, type ChargeResult, drained, EPSILON } from './budget';

/** Units of one shared budget this replica has already charged in Redis and may spend without asking. */
interface Lease {
  units: number;
  /** The budget's level in Redis when the lease was granted (the leased units counted as used). */
  level: number;
  at: number;
  expiresAt: number;
}

/** Calls this replica charged to one budget: in the current lease period, and in the one before. */
interface Demand {
  since: number;
  calls: number;
  previous: number;
  /** A charge asking for a lease of this budget is on its way to Redis. */
  asking: boolean;
}

/** A lease is spent within this long, at most, and within 1% of its budget's window. */
const LEASE_MS = 1_000;
/** Past this many budgets, demand of budgets not charged for a while is forgotten. */
const MAX_ENTRIES = 100_000;

/**
 * Budget leases (RATE_LIMIT_LEASE_PERCENT): with each charge it sends to Redis, this replica asks for about as
 * many more units as it charged to the same budgets in the last lease period (at most that percentage of the
 * budget), and then decides the next requests from what it was granted, without a round trip. Redis grants as
 * many units on every budget of the request, and only as far as each stays at most half full
 * (src/ratelimit/redis-buckets.ts), so near a limit every request is decided in Redis as without leases.
 * Leased units are charged when they are granted, so replicas never spend more than the budget together; a
 * lease not spent within its period (at most 1 s, and 1% of the window) is dropped, and its units count as used
 * until they drain.
 */
export class BudgetLeases {
  private readonly leases = new Map<string, Lease>();
  private readonly demand = new Map<string, Demand>();

  constructor(
    private readonly percent: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The charge decided from this replica's leases when every budget has enough leased; else undefined. */
  spend(charge: Charge): ChargeResult | undefined {
    if (this.percent === 0) return undefined;
    const now = this.clock();
    for (const budget of charge.budgets) this.count(budget.key, now);
    const leases: Lease[] = [];
    for (const budget of charge.budgets) {
      const lease = this.leases.get(budget.key);
      if (!lease || lease.expiresAt <= now || lease.units + EPSILON < charge.cost) return undefined;
      leases.push(lease);
    }
    const levels = leases.map((lease, index) => {
      lease.units -= charge.cost;
      return this.usedLevel(lease, charge.budgets[index]!, now);
    });
    return { allowed: true, levels };
  }

  /** Units to ask Redis for beyond the charge's cost, per budget; marks those budgets as asking. */
  extras(charge: Charge): number[] {
    // A budget too small to lease means this charge is always decided in Redis: leases of the others would only
    // be charged and dropped.
    if (this.percent === 0 || charge.budgets.some((budget) => this.capOf(budget) === 0)) {
      return charge.budgets.map(() => 0);
    }
    return charge.budgets.map((budget) => {
      const demand = this.demand.get(budget.key);
      const cap = this.capOf(budget);
      if (!demand || demand.asking) return 0;
      const extra = Math.min(cap, Math.max(demand.calls, demand.previous) * charge.cost);
      if (extra > 0) demand.asking = true;
      return extra;
    });
  }

  /**
   * Keeps what Redis granted beyond the cost (`result.granted`) and returns the result as the caller is told
   * about it: levels without the leased units nobody has spent yet.
   */
  granted(charge: Charge, result: ChargeResult): ChargeResult {
    const granted = result.granted;
    if (!granted || !result.allowed) return result;
    const now = this.clock();
    const levels = charge.budgets.map((budget, index) => {
      const level = result.levels[index]!;
      const units = granted[index] ?? 0;
      if (units <= 0) return level;
      const previous = this.leases.get(budget.key);
      const left = previous && previous.expiresAt > now ? previous.units : 0;
      const lease = { units: left + units, level, at: now, expiresAt: now + leaseMs(budget.windowMs) };
      this.leases.set(budget.key, lease);
      return this.usedLevel(lease, budget, now);
    });
    return { ...result, levels };
  }

  /** The charge that asked for `extras` came back from Redis, or did not: those budgets may ask again. */
  settled(charge: Charge, extras: readonly number[]): void {
    charge.budgets.forEach((budget, index) => {
      const demand = this.demand.get(budget.key);
      if (demand && (extras[index] ?? 0) > 0) demand.asking = false;
    });
  }

  private capOf(budget: Budget): number {
    return Math.floor((budget.count * this.percent) / 100);
  }

  private count(key: string, now: number): void {
    const demand = this.demand.get(key);
    if (!demand) {
      if (this.demand.size >= MAX_ENTRIES) this.forget(now);
      this.demand.set(key, { since: now, calls: 1, previous: 0, asking: false });
      return;
    }
    if (now - demand.since >= LEASE_MS) {
      // A quiet period in between means no recent demand to lease for.
      demand.previous = now - demand.since < 2 * LEASE_MS ? demand.calls : 0;
      demand.calls = 0;
      demand.since = now;
    }
    demand.calls += 1;
  }

  /** What the budget's holder has used: Redis's level, less the leased units still unspent, drained since. */
  private usedLevel(lease: Lease, budget: Budget, now: number): number {
    return drained(Math.max(0, lease.level - lease.units), lease.at, now, budget.count, budget.windowMs);
  }

  private forget(now: number): void {
    for (const [key, demand] of this.demand) {
      if (now - demand.since >= 2 * LEASE_MS && !demand.asking) {
        this.demand.delete(key);
        this.leases.delete(key);
      }
    }
    for (const [key, lease] of this.leases) if (lease.expiresAt <= now) this.leases.delete(key);
  }
}

function leaseMs(windowMs: number): number {
  return Math.min(LEASE_MS, windowMs / 100);
}
