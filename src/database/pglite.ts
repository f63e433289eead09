import { PGlite } from '@electric-sql/pglite';
import { pg_trgm } from '@electric-sql/pglite/contrib/pg_trgm';
import { PrismaPGlite } from 'pglite-prisma-adapter';

/**
 * The embedded database's code, loaded (`await import('./pglite.js')`) only where an embedded database is opened:
 * a gateway on PostgreSQL never needs it.
 */
export { PGlite, PrismaPGlite };

/**
 * The extensions the migrations create, loaded into every PGlite (the embedded database, the migrator's shadow
 * databases, `npm run migrate:create`): PGlite only has the contrib modules it is given at start.
 */
export const PGLITE_EXTENSIONS = { pg_trgm };
