#!/usr/bin/env node
'use strict';
// Runs the MCP conformance suite's server scenarios against one URL:
//
//   node test/conformance/run-conformance.js <url> [--expected-failures test/conformance/baseline.yml] [more options]
//
// Options after the URL go to `conformance server` unchanged (`--scenario <name>`, `--suite all`,
// `-o <dir>`, …). Prints the suite's output and exits with its exit code. With a baseline the suite
// exits 0 only when every failing scenario is listed there and every listed one still fails (a
// WARNING counts as a failure), so the baseline shrinks and never silently grows.
//
// The conformance package needs Node 22 (it calls fs.globSync); `npx -p node@22` supplies it whatever
// Node runs this script. Both versions are pinned: a new release is adopted on purpose, with the
// baseline reconciled in the same change.
const { spawn } = require('node:child_process');

const CONFORMANCE_PACKAGE = '@modelcontextprotocol/conformance@0.1.16';
const NODE_PACKAGE = 'node@22';

function main() {
  const [url, ...options] = process.argv.slice(2);
  if (!url || url.startsWith('-')) {
    console.error('usage: node test/conformance/run-conformance.js <url> [--expected-failures <baseline.yml>] [...]');
    process.exit(2);
  }
  const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';
  const args = ['-y', '-p', NODE_PACKAGE, '-p', CONFORMANCE_PACKAGE, '--', 'conformance', 'server', '--url', url];
  const child = spawn(npx, [...args, ...options], { stdio: 'inherit' });

  const forward = (signal) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('error', (error) => {
    console.error(`could not start ${npx}: ${error.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal) console.error(`conformance run ended by ${signal}`);
    process.exit(code ?? 1);
  });
}

main();
