/**
 * The names of a query string's parameters as a server reads them: `+` as a space, percent-decoded, without a
 * `[...]` suffix (`access_token[]`), trimmed and lowercased. The access log's censor and the refusal of a token in
 * the query string read them alike, so that what one hides the other refuses.
 */
export function queryParameterNames(query: string): string[] {
  return query.split('&').map(parameterName);
}

/** One parameter's raw name (the text before its `=`), read as `queryParameterNames` reads it. */
export function queryParameterName(raw: string): string {
  let name = raw.replace(/\+/g, ' ');
  try {
    name = decodeURIComponent(name);
  } catch {
    // Malformed escapes: the name as it is.
  }
  const bracket = name.indexOf('[');
  return (bracket === -1 ? name : name.slice(0, bracket)).trim().toLowerCase();
}

/** A parameter of a request target (`name=value`, or a name alone) and where its text starts in the target. */
export interface UrlParameter {
  text: string;
  at: number;
}

/**
 * The parameters of a raw request target or URI: its path's (each `;name=value` of a segment, RFC 3986 §3.3), its
 * query's (after the first `?`, up to a `#`; `&` or `;` between them, as some servers read it), then its fragment's
 * (after the first `#`), the fragment read as one more query whose parameters `&`, `;`, `?` or `#` separate. A `#`
 * is no delimiter in a request line, and Node hands it through in `req.url`: `?x=1#access_token=…` reaches the
 * gateway whole, and read as one query its token was the value of `x`. Clients put tokens in a fragment (OAuth's
 * implicit flow, `#/callback?access_token=…`) and in a path's parameters (`/files;token=…`).
 */
export function urlParameters(url: string): UrlParameter[] {
  const hashAt = url.indexOf('#');
  const queryAt = url.indexOf('?');
  // The common target, a path alone: every MCP request and its access log line ask, and the regular expression's
  // iterator and the arrays below cost more than the call's other URL work (a CPU profile at concurrency 32).
  if (hashAt === -1 && queryAt === -1 && !url.includes(';')) return [];
  const found: UrlParameter[] = [];
  const pathEnd = [queryAt, hashAt].filter((at) => at !== -1).reduce((end, at) => Math.min(end, at), url.length);
  for (const match of url.slice(0, pathEnd).matchAll(/;([^;/]*)/g)) {
    found.push({ text: match[1]!, at: match.index + 1 });
  }
  if (queryAt !== -1 && (hashAt === -1 || queryAt < hashAt)) {
    collect(url, queryAt + 1, hashAt === -1 ? url.length : hashAt, /[&;]/g, found);
  }
  if (hashAt !== -1) collect(url, hashAt + 1, url.length, /[&;?#]/g, found);
  return found;
}

/** The names of a request target's parameters, query and fragment (`urlParameters`), as `queryParameterNames` reads them. */
export function urlParameterNames(url: string): string[] {
  return urlParameters(url).map((parameter) => parameterName(parameter.text));
}

function parameterName(parameter: string): string {
  const equals = parameter.indexOf('=');
  return queryParameterName(equals === -1 ? parameter : parameter.slice(0, equals));
}

function collect(url: string, start: number, end: number, separator: RegExp, found: UrlParameter[]): void {
  const text = url.slice(start, end);
  let at = 0;
  for (const match of text.matchAll(separator)) {
    found.push({ text: text.slice(at, match.index), at: start + at });
    at = match.index + 1;
  }
  found.push({ text: text.slice(at), at: start + at });
}
