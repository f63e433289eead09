import { type Budget, nextUnitIn, remainingAt, waitFor } from './budget';

/** One budget as the client is told about it (draft-ietf-httpapi-ratelimit-headers). */
export interface BudgetReport {
  policy: string;
  /** `q`: units per window. */
  quota: number;
  /** `w`: the window, whole seconds. */
  windowSeconds: number;
  /** `r`: whole units available now. */
  remaining: number;
  /** `t`: seconds within which no more than `remaining` can be used (until the next unit, or until the refused request would fit). */
  resetSeconds: number;
}

export function reportOf(budget: Budget, level: number, cost: number, refused: boolean): BudgetReport {
  const waitMs = refused ? waitFor(level, cost, budget.count, budget.windowMs) : 0;
  return {
    policy: budget.policy,
    quota: budget.count,
    windowSeconds: Math.round(budget.windowMs / 1000),
    remaining: remainingAt(level, budget.count),
    resetSeconds: Math.ceil((waitMs > 0 ? waitMs : nextUnitIn(level, budget.count, budget.windowMs)) / 1000),
  };
}

/**
 * `RateLimit-Policy` and `RateLimit` as Structured Field lists of strings with
 * parameters (draft-ietf-httpapi-ratelimit-headers-11):
 * `"principal";q=600;w=60` and `"principal";r=599;t=1`.
 */
export function rateLimitHeaders(reports: readonly BudgetReport[]): Record<string, string> {
  if (reports.length === 0) return {};
  let policies = '';
  let states = '';
  for (const report of reports) {
    const name = sfString(report.policy);
    const separator = policies === '' ? '' : ', ';
    policies += `${separator}${name};q=${report.quota};w=${report.windowSeconds}`;
    states += `${separator}${name};r=${report.remaining};t=${report.resetSeconds}`;
  }
  return { 'RateLimit-Policy': policies, RateLimit: states };
}

/** Policy names as sf-strings, each escaped once: they come from configuration (and registered slugs), so few. */
const SF_STRINGS = new Map<string, string>();
const SF_STRINGS_KEPT = 1_000;

/** An sf-string: printable ASCII, with `"` and `\` escaped; anything else is replaced. */
function sfString(text: string): string {
  let quoted = SF_STRINGS.get(text);
  if (quoted === undefined) {
    quoted = `"${text.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, (char) => `\\${char}`)}"`;
    if (SF_STRINGS.size < SF_STRINGS_KEPT) SF_STRINGS.set(text, quoted);
  }
  return quoted;
}
