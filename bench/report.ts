/** What the bench scripts' report files share. */

/**
 * `url` fit for a report that may be shared: its password left out, and its user name, if any, shown as `…`
 * (there was one, but not which); `(not a URL)` for text that does not parse as one.
 */
export function withoutCredentials(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const parsed = new URL(url);
    parsed.username = parsed.username ? '…' : '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}
