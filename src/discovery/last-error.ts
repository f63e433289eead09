import { type ClassifiedError, UPSTREAM_ERROR_KINDS, type UpstreamErrorKind } from '../upstream/upstream-error';

const KINDS: ReadonlySet<string> = new Set(UPSTREAM_ERROR_KINDS);

/**
 * `server_discovery.last_error` holds `{kind}: {message}`: the table has no
 * column of its own for the kind, and the text stays readable as it is.
 */
export function formatLastError(failure: Pick<ClassifiedError, 'kind' | 'message'>): string {
  return `${failure.kind}: ${failure.message}`;
}

export function parseLastError(text: string): { kind: UpstreamErrorKind; message: string } {
  const at = text.indexOf(': ');
  const kind = at > 0 ? text.slice(0, at) : '';
  return KINDS.has(kind)
    ? { kind: kind as UpstreamErrorKind, message: text.slice(at + 2) }
    : { kind: 'other', message: text };
}
