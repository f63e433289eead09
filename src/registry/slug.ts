/** Slugs that would shadow a fixed route under `/servers/`. */
export const RESERVED_SLUGS: ReadonlySet<string> = new Set(['import', 'export']);

const MAX_SLUG = 32;

/**
 * The slug a server gets when none is given: the last segment of its name,
 * lowercased, with every other character turned into '-', at most 32 long.
 */
export function deriveSlug(name: string): string {
  const last = name.slice(name.lastIndexOf('/') + 1);
  const slug = trimDashes(
    last
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/-{2,}/g, '-'),
  ).slice(0, MAX_SLUG);
  return trimDashes(slug) || 'server';
}

/** The n-th candidate for a derived slug: `base`, then `base-2`, `base-3`, … each within 32 characters. */
export function slugCandidate(base: string, n: number): string {
  if (n <= 1) return base;
  const suffix = `-${n}`;
  return `${trimDashes(base.slice(0, MAX_SLUG - suffix.length))}${suffix}`;
}

/** The first candidate for `base` that is neither taken nor reserved. */
export function firstFreeSlug(base: string, taken: ReadonlySet<string>): string {
  for (let n = 1; ; n++) {
    const candidate = slugCandidate(base, n);
    if (!taken.has(candidate) && !RESERVED_SLUGS.has(candidate)) return candidate;
  }
}

function trimDashes(text: string): string {
  return text.replace(/^-+|-+$/g, '');
}
