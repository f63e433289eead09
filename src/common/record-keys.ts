import { z } from 'zod';

export const PROTO_KEY_RULE = 'is not a name this field can hold';

/**
 * A record whose keys a client chooses. Zod leaves a `__proto__` key out of what it parses (assigning it would
 * replace the result's prototype), so without this check the key and its value vanished while the write
 * succeeded; here it is refused, named by its path.
 */
export function clientKeyed<T extends z.ZodType>(record: T) {
  return z.preprocess((value, ctx) => {
    if (typeof value === 'object' && value !== null && Object.hasOwn(value, '__proto__')) {
      ctx.addIssue({ code: 'custom', path: ['__proto__'], message: PROTO_KEY_RULE, input: value });
    }
    return value;
  }, record);
}
