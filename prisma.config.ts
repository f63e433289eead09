import { defineConfig } from 'prisma/config';

// `env('DATABASE_URL')` from prisma/config throws when the variable is unset,
// for every command, `prisma generate` included (and generate runs on every
// `npm install`). The URL only matters to commands that reach a database, so
// read process.env directly and leave the datasource out when it is unset.
const url = process.env.DATABASE_URL;

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  ...(url ? { datasource: { url } } : {}),
});
