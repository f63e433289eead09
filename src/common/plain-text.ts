import type { z } from 'zod';

/**
 * What free text the API accepts, in one place: no control characters (C0, DEL, C1), except tab and line
 * breaks in text that may span lines, and no UTF-16 surrogate without its pair. PostgreSQL stores neither NUL
 * (in text or jsonb) nor a lone surrogate (in jsonb), and the others have no business in a name, a title, a
 * URL or a filter; refused at the edge, they come back as a 400 naming the field instead of a failed write.
 */
const CONTROL = /\p{Cc}/u;
const CONTROL_BUT_LINE_SPACING = /(?![\t\n\r])\p{Cc}/u;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const SINGLE_LINE_RULE = 'must not contain control characters';
export const MULTI_LINE_RULE = 'must not contain control characters other than tab and line breaks';
export const UNICODE_RULE = 'must be valid Unicode text (no unpaired surrogate)';

/** A one-line text field: a title, a URL, a glob, a search. */
export function singleLine<T extends z.ZodString>(schema: T): T {
  return schema
    .refine((text) => !CONTROL.test(text), SINGLE_LINE_RULE)
    .refine((text) => !LONE_SURROGATE.test(text), UNICODE_RULE);
}

/** A text field that may hold several lines: a description, a status message. */
export function multiLine<T extends z.ZodString>(schema: T): T {
  return schema
    .refine((text) => !CONTROL_BUT_LINE_SPACING.test(text), MULTI_LINE_RULE)
    .refine((text) => !LONE_SURROGATE.test(text), UNICODE_RULE);
}
