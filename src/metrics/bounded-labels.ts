/** The label value that stands for every value beyond a cap. */
export const OTHER_LABEL = 'other';

/** Longest label value kept as is; a longer one is never admitted (tool names are far shorter). */
const MAX_VALUE_LENGTH = 128;

/**
 * Keeps the values of one label bounded per scope (e.g. tool names per
 * server): the first `limit` distinct values admitted keep their own series,
 * every later one becomes `other`. Values are admitted only when the caller
 * says they are genuine (a tool call that succeeded), so a client sending made-up
 * names cannot take the slots.
 */
export class BoundedLabels {
  private readonly scopes = new Map<string, Set<string>>();

  constructor(readonly limit: number) {}

  /** `value` when admitted (now or before), otherwise `other`. */
  label(scope: string, value: string, admit: boolean): string {
    let known = this.scopes.get(scope);
    if (known?.has(value)) return value;
    if (!admit || value.length > MAX_VALUE_LENGTH || value === OTHER_LABEL) return OTHER_LABEL;
    if (!known) {
      known = new Set();
      this.scopes.set(scope, known);
    }
    if (known.size >= this.limit) return OTHER_LABEL;
    known.add(value);
    return value;
  }

  /** Distinct values admitted in `scope`. */
  size(scope: string): number {
    return this.scopes.get(scope)?.size ?? 0;
  }
}
