import { DomainError, type FieldError } from '../common/domain-error';
import type { UnreadableVersion } from './stored-version';

/** Raised by the repository when a unique field is already taken; the service words it. */
export class DuplicateServerError extends Error {
  constructor(readonly field: 'name' | 'slug' | 'version') {
    super(`duplicate server ${field}`);
    this.name = 'DuplicateServerError';
  }
}

/** Raised by the repository when a write would change `version` to one already in the history. */
export class PublishedVersionError extends Error {
  constructor(readonly version: string) {
    super(`version ${version} is already published`);
    this.name = 'PublishedVersionError';
  }
}

/** What an admin needs of a stored server row the gateway cannot read to find it, then repair or delete it. */
export interface UnreadableServer {
  id: string;
  name: string;
  slug: string;
  url: string;
  revision: number;
  createdAt: Date;
  /** Each stored field that is not what its schema allows, and why (never its value). */
  problems: FieldError[];
}

/**
 * A server whose stored row the gateway cannot read (a field not what its schema allows: a direct database write, a
 * restore, an older version). Answered 409 naming the row and the fields, so an admin can repair them (PUT, or PATCH
 * giving each of them) or delete the server; never a 500.
 */
export class UnreadableServerError extends DomainError {
  constructor(readonly server: UnreadableServer) {
    super(
      'conflict',
      `server ${server.id} (${server.slug}) is stored with fields the gateway cannot read: ` +
        'replace them with PUT, or PATCH giving each of them, or DELETE the server',
      server.problems,
    );
  }
}

/**
 * A version of a server's history whose stored row the gateway cannot read (its status, or a field of its record: a
 * direct database write, a restore, an older version). Answered 409 naming it and the fields, never a 500. A published
 * version never changes through the API; the latest one is written again by the server's next change that keeps it.
 */
export class UnreadableVersionError extends DomainError {
  constructor(readonly version: UnreadableVersion) {
    super(
      'conflict',
      `version ${JSON.stringify(version.version)} of server ${version.name} is stored with fields the gateway ` +
        'cannot read',
      version.problems,
    );
  }
}

export const RegistryErrors = {
  notFound: (ref: string): DomainError =>
    new DomainError('not_found', `no server ${JSON.stringify(ref)} is registered`),
  badRef: (): DomainError =>
    new DomainError('validation_error', 'the path does not name a server', [
      { field: 'ref', message: 'must be a server id (uuid), slug, or URL-encoded name' },
    ]),
  versionNotFound: (name: string, version: string): DomainError =>
    new DomainError('not_found', `server ${name} has no version ${JSON.stringify(version)}`),
  badVersion: (): DomainError =>
    new DomainError('validation_error', 'the path does not name a version', [
      { field: 'version', message: 'must be a version such as 1.0.2' },
    ]),
  duplicate: (field: 'name' | 'slug' | 'version', value?: string): DomainError =>
    new DomainError(
      'conflict',
      `a server with ${value ? `${field} ${JSON.stringify(value)}` : `this ${field}`} already exists`,
      [{ field, message: 'is already taken by another server' }],
    ),
  versionPublished: (version: string): DomainError =>
    new DomainError(
      'conflict',
      `version ${JSON.stringify(version)} is already in the server's history; a published version never changes`,
      [{ field: 'version', message: 'is already published; give the change a new version' }],
    ),
  nameChange: (): DomainError =>
    new DomainError('validation_error', 'the name of a server cannot change', [
      { field: 'name', message: 'must equal the current name; register a new server instead' },
    ]),
  preconditionFailed: (): DomainError =>
    new DomainError('precondition_failed', 'the server has changed: If-Match does not match its current ETag'),
  urlRefused: (reason: string): DomainError =>
    new DomainError('validation_error', 'the upstream URL is refused', [{ field: 'url', message: reason }]),
  badCursor: (): DomainError =>
    new DomainError('validation_error', 'the cursor is not valid', [
      { field: 'cursor', message: 'must be a nextCursor returned by this API' },
    ]),
};
