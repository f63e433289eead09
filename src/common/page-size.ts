import { z } from 'zod';

/**
 * The `limit` of an `/api/v1` list: the text of a whole number from 1 to `max`, `fallback` when absent, described
 * in /docs-json as the integer it holds, with its bounds and default. The text's rule is a refinement rather than
 * a `regex`, which zod would write into the description as a `pattern` beside `type: integer`.
 */
export function pageSizeParam(max: number, fallback: number) {
  const digits = new RegExp(`^\\d{1,${String(max).length}}$`);
  return z
    .string()
    .refine((text) => digits.test(text), `must be a whole number from 1 to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(1, 'must be at least 1').max(max, `must be at most ${max}`))
    .default(fallback)
    .meta({ type: 'integer', minimum: 1, maximum: max, description: `Page size, 1-${max}` });
}
