import type { ServerView, UnreadableServerView } from '../registry/server.dto';
import type { ImportReport } from '../registry/server-transfer.dto';
import type { Problem } from './gateway-client';

/** Columns padded to their widest cell. */
export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

export function serverTable(servers: ServerView[]): string {
  if (servers.length === 0) return 'no servers\n';
  return table([
    ['SLUG', 'NAME', 'VERSION', 'STATUS', 'TRANSPORT', 'URL'],
    ...servers.map((server) => [server.slug, server.name, server.version, server.status, server.transport, server.url]),
  ]);
}

export function serverDetails(server: ServerView): string {
  const timeouts = [
    server.timeouts.connectMs !== undefined ? `connect ${server.timeouts.connectMs} ms` : undefined,
    server.timeouts.requestMs !== undefined ? `request ${server.timeouts.requestMs} ms` : undefined,
  ].filter(Boolean);
  return table([
    ['name', server.name],
    ['id', server.id],
    ['slug', server.slug],
    ['title', server.title ?? '-'],
    ['description', server.description ?? '-'],
    ['version', server.version],
    ['url', `${server.url} (${server.transport})`],
    ['status', server.statusMessage ? `${server.status}: ${server.statusMessage}` : server.status],
    ['auth', describeAuth(server.auth)],
    ['tags', server.tags.join(', ') || '-'],
    ['allowed roles', server.allowedRoles.join(', ') || '-'],
    ['timeouts', timeouts.join(', ') || 'gateway defaults'],
    ['revision', String(server.revision)],
    ['created', server.createdAt],
    ['updated', server.updatedAt],
  ]);
}

export function importLines(report: ImportReport): string {
  const lines = report.results.map((item) => {
    const name = item.name ?? `document ${item.index}`;
    const errors = (item.errors ?? []).map((error) => `\n    ${error.field}: ${error.message}`).join('');
    return `${item.result.padEnd(9)} ${name}${errors}\n`;
  });
  const summary = `${report.created} created, ${report.updated} updated, ${report.unchanged} unchanged, ${report.failed} failed\n`;
  return lines.join('') + summary;
}

/** A refused request for stderr: the detail, the status and code, then one line per field. */
/** A server the gateway cannot read, as `servers list` names it on stderr: its id, slug, and each field at fault. */
export function unreadableLines(server: UnreadableServerView): string {
  const fields = server.problems.map((problem) => `  ${problem.field}: ${problem.message}\n`).join('');
  return (
    `mcp-gateway: server ${server.id} (${server.slug}) is stored with fields the gateway cannot read, left out of ` +
    `the list: replace them with PUT or PATCH, or remove it (servers rm ${server.id})\n${fields}`
  );
}

export function problemLines(problem: Problem): string {
  const code = problem.code ? ` ${problem.code}` : '';
  const fields = (problem.errors ?? []).map((error) => `  ${error.field}: ${error.message}\n`).join('');
  return `mcp-gateway: ${problem.detail ?? 'the request failed'} (HTTP ${problem.status}${code})\n${fields}`;
}

function describeAuth(auth: ServerView['auth']): string {
  switch (auth.type) {
    case 'none':
      return 'none';
    case 'headers':
      return Object.entries(auth.headers)
        .map(([header, { env }]) => `${header} from $${env}`)
        .join(', ');
    case 'entra-obo':
    case 'entra-client-credentials':
      return `${auth.type} (${auth.scope})`;
  }
}
