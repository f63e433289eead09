/**
 * The names of a query string's parameters as a server reads them: `+` as a space, percent-decoded, without a
 * `[...]` suffix (`access_token[]`), trimmed and lowercased. The access log's censor and the refusal of a token in
 * the query string read them alike, so that what one hides the other refuses.
 */
export function queryParameterNames(query: string): string[] {
  return query.split('&').map((parameter) => {
    const equals = parameter.indexOf('=');
    return queryParameterName(equals === -1 ? parameter : parameter.slice(0, equals));
  });
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
