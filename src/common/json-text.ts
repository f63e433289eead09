/**
 * `JSON.stringify`'s text for strings and arrays of plain values on the hot path, without V8's serializer where
 * nothing needs escaping (nearly always): on Node 20 it spends about 20 instructions per character of a string,
 * and several hundred on each value before that, where a regular expression checks a character in a few.
 */

/** Characters `JSON.stringify` writes escaped in a string; surrogates, of which it escapes only lone ones, too. */
// eslint-disable-next-line no-control-regex
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `JSON.stringify(value)`. */
export function jsonString(value: string): string {
  return ESCAPED.test(value) ? JSON.stringify(value) : `"${value}"`;
}

/** `JSON.stringify(values)`. Its strings are checked together, once; if any needs escaping the serializer writes it all. */
export function jsonArray(values: readonly (string | number | null)[]): string {
  let text = '[';
  let strings = '';
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    if (index > 0) text += ',';
    if (typeof value === 'string') {
      strings += value;
      text += `"${value}"`;
    } else if (typeof value === 'number' && Number.isFinite(value)) text += String(value);
    else if (value === null || typeof value === 'number') text += 'null';
    else return JSON.stringify(values);
  }
  return ESCAPED.test(strings) ? JSON.stringify(values) : `${text}]`;
}
