import type { FieldError } from '../common/domain-error';

/** Stored rows remembered before the memory is cleared: each logs once more then, at most. */
const REMEMBERED = 10_000;

interface Warner {
  warn(fields: object, message: string): void;
}

/**
 * Logs a stored server its reader cannot read (readStoredFields) once per row and revision, at warn, with its id and
 * the fields at fault, as the registry does: the prober, discovery and the MCP endpoints meet such a row at every
 * round or lookup, and a line each time would bury the one that says what to repair.
 */
export class UnreadableServerLog {
  private readonly logged = new Set<string>();

  /** `message`: what this reader does with such a row, until an admin repairs or deletes it. */
  constructor(
    private readonly logger: Warner,
    private readonly message: string,
  ) {}

  report(server: { id: string; slug: string; revision: number }, problems: FieldError[]): void {
    this.once(`${server.id}@${server.revision}`, { serverId: server.id, slug: server.slug, problems });
  }

  /** A stored version of a server's history, once per row and write of it (`updatedAt`). */
  reportVersion(version: { id: string; name: string; version: string; updatedAt: Date }, problems: FieldError[]): void {
    this.once(`${version.id}@${version.updatedAt.getTime()}`, {
      serverName: version.name,
      version: version.version,
      problems,
    });
  }

  private once(key: string, fields: object): void {
    if (this.logged.has(key)) return;
    if (this.logged.size >= REMEMBERED) this.logged.clear();
    this.logged.add(key);
    this.logger.warn(fields, this.message);
  }
}
