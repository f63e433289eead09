#!/usr/bin/env node
'use strict';
// Rewrites the README's configuration table from the schema's declarations
// (src/config/config.schema.ts, through dist/: run `npm run build` first).
const fs = require('node:fs');
const path = require('node:path');

const { CONFIG_VARIABLES } = require('../dist/config/config.schema.js');
const readmePath = path.join(__dirname, '..', 'README.md');
const START = '<!-- config-table:start -->';
const END = '<!-- config-table:end -->';

const rows = CONFIG_VARIABLES.map(
  (v) => `| \`${v.key}\` | ${v.defaultText} | ${v.secret ? 'yes' : 'no'} | ${v.description} |`,
);
const table = ['| variable | default | secret | meaning |', '|---|---|---|---|', ...rows].join('\n');
const readme = fs.readFileSync(readmePath, 'utf8');
const start = readme.indexOf(START);
const end = readme.indexOf(END);
if (start < 0 || end < start) throw new Error(`README.md lacks the ${START} … ${END} markers`);
fs.writeFileSync(readmePath, `${readme.slice(0, start + START.length)}\n\n${table}\n\n${readme.slice(end)}`);
