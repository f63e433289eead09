import { DomainError } from '../common/domain-error';

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
