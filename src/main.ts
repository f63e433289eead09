#!/usr/bin/env node
import 'reflect-metadata';
import { runCli } from './cli/cli';

runCli(process.argv).then(
  (code) => exitOnceFlushed(code),
  (error: unknown) => {
    process.stderr.write(`mcp-gateway: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

/** process.exit() drops what a pipe has not taken yet (a large `servers export`): exit once both streams are flushed. */
function exitOnceFlushed(code: number): void {
  let pending = 2;
  const flushed = (): void => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', flushed);
  process.stderr.write('', flushed);
}
