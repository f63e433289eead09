import { Injectable } from '@nestjs/common';
import { PrismaService } from '../database/prisma.service';
import { SERVER_NAME, SERVER_SLUG } from '../registry/server.schema';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** What access decisions read of a registered server. */
export interface ServerAccess {
  id: string;
  slug: string;
  name: string;
  /** `active`, `deprecated` or `disabled` (as the registry writes it). */
  status: string;
  allowedRoles: string[];
  /** As stored; `AccessPolicy` validates it (and denies every tool when it is not valid). */
  toolRules: unknown;
}

/** Reads the access-relevant columns of `servers`; the registry owns the writes. */
@Injectable()
export class ServerAccessRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** By id (uuid), slug or name; undefined when there is no such server or the reference has no valid shape. */
  async findByRef(ref: string): Promise<ServerAccess | undefined> {
    const where = UUID.test(ref)
      ? { id: ref.toLowerCase() }
      : SERVER_SLUG.test(ref)
        ? { slug: ref }
        : SERVER_NAME.test(ref)
          ? { name: ref }
          : undefined;
    if (!where) return undefined;
    const row = await this.prisma.server.findUnique({
      where,
      select: { id: true, slug: true, name: true, status: true, allowedRoles: true, toolRules: true },
    });
    if (!row) return undefined;
    return { ...row, allowedRoles: row.allowedRoles ?? [] };
  }
}
