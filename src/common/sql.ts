/** `%`, `_` and `\` match themselves in a LIKE pattern (with `\` as the escape character, PostgreSQL's default). */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}
