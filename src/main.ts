#!/usr/bin/env node
import 'reflect-metadata';
import { runCli } from './cli/cli';

runCli(process.argv).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`mcp-gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
