#!/usr/bin/env node
'use strict';
// Authoring command: `npm run migrate:create -- <name>`.
//
// The equivalent of `prisma migrate dev --create-only --name <name>`, offline
// and without a database server: the existing migrations are applied to an
// in-memory PGlite (the development database), then the migrator writes
// prisma/migrations/<timestamp>_<name>/migration.sql with the SQL that brings
// that database to prisma/schema.prisma. Review the file, then commit it.
// Uses the compiled migrator: run `npm run build` first.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const migratorPath = path.join(root, 'dist', 'database', 'migrator.js');
const migrationsDir = path.join(root, 'prisma', 'migrations');
const schemaPath = path.join(root, 'prisma', 'schema.prisma');

async function main() {
  const name = process.argv[2];
  if (!name || process.argv.length > 3 || !/^[A-Za-z0-9_]+$/.test(name)) {
    console.error('usage: npm run migrate:create -- <name>   (letters, digits and _ only, e.g. add_users)');
    return 2;
  }
  if (!fs.existsSync(migratorPath)) {
    console.error(`${path.relative(root, migratorPath)} is missing: run \`npm run build\` first.`);
    return 1;
  }
  const { applyMigrations, createMigration } = require(migratorPath);
  // The embedded database's code as the gateway loads it, with the extensions the migrations create.
  const { PGlite, PrismaPGlite, PGLITE_EXTENSIONS } = require(path.join(root, 'dist', 'database', 'pglite.js'));

  const dev = new PGlite({ extensions: PGLITE_EXTENSIONS }); // in memory
  try {
    const adapterFactory = new PrismaPGlite(dev);
    await applyMigrations(adapterFactory, migrationsDir);
    const created = await createMigration({ name, schemaPath, migrationsDir, adapterFactory });
    if (created === null) {
      console.log('prisma/schema.prisma matches the migrations: nothing to create.');
      return 0;
    }
    console.log(`created prisma/migrations/${created}/migration.sql`);
    console.log('Review it, then regenerate the client with `node scripts/prisma-generate.js`.');
    return 0;
  } finally {
    await dev.close();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
