import { spawn } from 'node:child_process';
import * as path from 'node:path';

const LOGGER = path.join(__dirname, '..', 'dist', 'logging', 'logger.js');

/** Runs `body` in a fresh Node process with `logger` created as `serve` creates it; resolves with its stdout lines. */
function runLogging(body: string, onLine?: (line: string, kill: () => void) => void): Promise<string[]> {
  const script = `const logger = require(${JSON.stringify(LOGGER)}).createLogger({ logLevel: 'info' });\n${body}`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      onLine?.(line, () => child.kill('SIGKILL'));
    }
  });
  return new Promise((resolve) => child.once('close', () => resolve(lines)));
}

const messages = (lines: string[]): string[] => lines.map((line) => (JSON.parse(line) as { msg: string }).msg);

/** Log lines are written in batches (src/logging/logger.ts): none may be lost or held back for long. */
describe('log output on standard output', () => {
  it('writes the lines still waiting when the process exits', async () => {
    const lines = await runLogging(`for (let i = 0; i < 3; i++) logger.info('line ' + i); process.exit(0);`);
    expect(messages(lines)).toEqual(['line 0', 'line 1', 'line 2']);
  });

  it('writes the lines logged before an uncaught exception', async () => {
    const lines = await runLogging(
      `logger.error('before the crash'); setImmediate(() => { throw new Error('boom'); });`,
    );
    expect(messages(lines)).toEqual(['before the crash']);
  });

  it('writes a lone line while the process goes on, without waiting for more', async () => {
    // The process would live for a minute; it is killed (nothing flushed at exit) once its line arrives.
    let arrivedWhileAlive = false;
    const lines = await runLogging(`logger.info('alone'); setTimeout(() => undefined, 60_000);`, (_line, kill) => {
      arrivedWhileAlive = true;
      kill();
    });
    expect(arrivedWhileAlive).toBe(true);
    expect(messages(lines)).toEqual(['alone']);
  });

  it('writes a line logged right after a burst, while the burst is being written, without waiting for more', async () => {
    let arrivedWhileAlive = false;
    const lines = await runLogging(
      `for (let i = 0; i < 500; i++) logger.info({ i, pad: 'x'.repeat(200) }, 'burst'); logger.info('after'); setTimeout(() => undefined, 60_000);`,
      (line, kill) => {
        if (!line.includes('"after"')) return;
        arrivedWhileAlive = true;
        kill();
      },
    );
    expect(arrivedWhileAlive).toBe(true);
    expect(messages(lines).at(-1)).toBe('after');
    expect(lines).toHaveLength(501);
  });

  it('writes many lines in order, whole', async () => {
    const lines = await runLogging(
      `for (let i = 0; i < 2000; i++) logger.info({ i, pad: 'x'.repeat(i % 300) }, 'many'); setTimeout(() => process.exit(0), 50);`,
    );
    expect(lines.map((line) => (JSON.parse(line) as { i: number }).i)).toEqual([...Array(2000).keys()]);
  });
});
