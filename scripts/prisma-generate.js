#!/usr/bin/env node
'use strict';
// `npm install` postinstall hook: generate the Prisma client into
// src/generated/prisma, offline.
//
// Prisma 7's CLI resolves its native schema engine on every command and tries
// to download it when missing; the download host is unreachable here (and in
// many CI/air-gapped setups). `generate` never runs that engine, so pointing
// PRISMA_SCHEMA_ENGINE_BINARY at any existing executable (node itself, which
// exists on every platform) satisfies the check. Migrations do not use the
// native engine at all: see src/database/migrator.ts.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const cli = require.resolve('prisma/build/index.js', { paths: [root] });

const env = {
  ...process.env,
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY || process.execPath,
  // No telemetry/update check: both are network calls.
  CHECKPOINT_DISABLE: '1',
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
};

const result = spawnSync(process.execPath, [cli, 'generate', '--schema', 'prisma/schema.prisma'], {
  cwd: root,
  env,
  stdio: 'inherit',
});
if (result.error) throw result.error;
process.exit(result.status ?? 1);
