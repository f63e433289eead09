import { createZodDto } from '../common/zod-dto';
import { z } from 'zod';
import { singleLine } from '../common/plain-text';
import { decodeListCursor } from './facade-cursor';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './official-registry.types';

/**
 * Query parameters of the official read API. An empty value counts as
 * absent, as the official registry treats it; a parameter given twice
 * arrives as an array and is refused.
 */

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;
/** A `+hh:mm` offset sent unencoded in a query string arrives as ` hh:mm`. */
const SPACE_FOR_PLUS_OFFSET = /(:\d{2}(?:\.\d{1,9})?) (\d{2}:\d{2})$/;

/** An RFC 3339 date-time (with a time zone, as RFC 3339 requires), or undefined. */
export function parseRfc3339(text: string): Date | undefined {
  const match = RFC3339.exec(text.replace(SPACE_FOR_PLUS_OFFSET, '$1+$2'));
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s, fraction, zulu, sign, oh, om] = match;
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, s].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth) return undefined;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  let offsetMinutes = 0;
  if (!zulu) {
    const [hours, minutes] = [Number(oh), Number(om)];
    if (hours > 23 || minutes > 59) return undefined;
    offsetMinutes = (sign === '-' ? -1 : 1) * (hours * 60 + minutes);
  }
  const millis = fraction ? Math.floor(Number(`0${fraction}`) * 1000) : 0;
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, millis);
  return new Date(utc.getTime() - offsetMinutes * 60_000);
}

const absent = (text: string): boolean => text === '';

const limitParam = z
  .string()
  .transform((text, ctx) => {
    if (absent(text)) return undefined;
    const limit = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE_SIZE)) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number from 1 to ${MAX_PAGE_SIZE}` });
      return z.NEVER;
    }
    return limit;
  })
  .optional()
  // Read as text (an empty value counts as absent), described as what it holds.
  .meta({
    type: 'integer',
    minimum: 1,
    maximum: MAX_PAGE_SIZE,
    default: DEFAULT_PAGE_SIZE,
    description: `Page size, 1 to ${MAX_PAGE_SIZE}`,
  });

const cursorParam = z
  .string()
  .transform((text, ctx) => {
    if (absent(text)) return undefined;
    const position = text.length <= 1000 ? decodeListCursor(text) : undefined;
    if (!position) {
      ctx.addIssue({ code: 'custom', message: 'is not a cursor this API issued' });
      return z.NEVER;
    }
    return position;
  })
  .optional()
  .describe('`metadata.nextCursor` of the previous page, verbatim');

const searchParam = singleLine(z.string().max(200, 'must be at most 200 characters'))
  .transform((text) => (absent(text) ? undefined : text))
  .optional()
  .describe('Case-insensitive substring of the server name');

const updatedSinceParam = z
  .string()
  .max(64, 'must be an RFC 3339 date-time')
  .transform((text, ctx) => {
    if (absent(text)) return undefined;
    const since = parseRfc3339(text);
    if (!since) {
      ctx.addIssue({ code: 'custom', message: 'must be an RFC 3339 date-time, e.g. 2025-08-07T13:15:04.280Z' });
      return z.NEVER;
    }
    return since;
  })
  .optional()
  .describe('Only entries updated after this RFC 3339 date-time; includes deleted entries');

const versionParam = singleLine(z.string().max(255, 'must be at most 255 characters'))
  .transform((text) => (absent(text) ? undefined : text))
  .optional()
  .describe("`latest` for each server's latest version, or an exact version such as 1.2.3");

const includeDeletedParam = z
  .string()
  .transform((text, ctx) => {
    if (absent(text)) return undefined;
    const flag = text.toLowerCase();
    if (flag === 'true' || flag === '1') return true;
    if (flag === 'false' || flag === '0') return false;
    ctx.addIssue({ code: 'custom', message: 'must be true or false' });
    return z.NEVER;
  })
  .optional()
  .meta({ type: 'boolean', default: false, description: 'Include deleted servers (`true`, `false`, `1` or `0`)' });

export const listServersQuerySchema = z.object({
  cursor: cursorParam,
  limit: limitParam,
  search: searchParam,
  updated_since: updatedSinceParam,
  version: versionParam,
  include_deleted: includeDeletedParam,
});
export class ListServersQueryDto extends createZodDto(listServersQuerySchema) {}

export const versionsQuerySchema = z.object({ include_deleted: includeDeletedParam });
export class VersionsQueryDto extends createZodDto(versionsQuerySchema) {}
