import type { ServerView } from './server.dto';
import type { ServerStatus, ServerTimeouts, ToolRules, UpstreamAuth, UpstreamTransport } from './server.schema';
import type { VersionDetail, VersionStatus, VersionSummary } from './server-version.dto';
import type { UnreadableVersion } from './stored-version';

/** The writable fields of a server, fully resolved (what a write stores). */
export interface ServerFields {
  name: string;
  slug: string;
  title: string | null;
  description: string | null;
  version: string;
  url: string;
  transport: UpstreamTransport;
  auth: UpstreamAuth;
  tags: string[];
  status: ServerStatus;
  statusMessage: string | null;
  allowedRoles: string[];
  timeouts: ServerTimeouts;
  toolRules: ToolRules;
}

/** A stored server, as the repository returns it. */
export interface ServerRecord extends ServerFields {
  id: string;
  revision: number;
  createdAt: Date;
  updatedAt: Date;
}

/** A stored version as a history list or lookup reads it: its record, or what keeps the gateway from reading it. */
export type ReadVersion = ServerVersionRecord | UnreadableVersion;

/** A stored row of a server's version history. */
export interface ServerVersionRecord {
  serverId: string;
  name: string;
  version: string;
  record: ServerView;
  status: VersionStatus;
  isLatest: boolean;
  publishedAt: Date;
  updatedAt: Date;
}

export function toServerView(server: ServerRecord): ServerView {
  return {
    id: server.id,
    name: server.name,
    slug: server.slug,
    title: server.title,
    description: server.description,
    version: server.version,
    url: server.url,
    transport: server.transport,
    auth: server.auth,
    tags: server.tags,
    status: server.status,
    statusMessage: server.statusMessage,
    allowedRoles: server.allowedRoles,
    timeouts: server.timeouts,
    toolRules: server.toolRules,
    revision: server.revision,
    createdAt: server.createdAt.toISOString(),
    updatedAt: server.updatedAt.toISOString(),
  };
}

export function fieldsOf(server: ServerRecord): ServerFields {
  const { id: _id, revision: _revision, createdAt: _createdAt, updatedAt: _updatedAt, ...fields } = server;
  return fields;
}

/** Whether two sets of fields store the same thing (key order aside). */
export function sameFields(a: ServerFields, b: ServerFields): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}

export function toVersionSummary(row: ServerVersionRecord): VersionSummary {
  return {
    version: row.version,
    status: row.status,
    isLatest: row.isLatest,
    publishedAt: row.publishedAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

export function toVersionDetail(row: ServerVersionRecord): VersionDetail {
  return { name: row.name, ...toVersionSummary(row), record: row.record };
}
