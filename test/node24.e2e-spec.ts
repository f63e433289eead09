import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import { ServeProcess } from './support/cli';

/**
 * The container runs Node 24 LTS while development machines run Node 20:
 * boot the built CLI under Node 24 (the `node@24` package from npm) as well.
 */
describe('the built gateway under Node 24', () => {
  let node24: string;
  let dataDir: string;

  beforeAll(() => {
    node24 = execFileSync('npx', ['-y', '-p', 'node@24', '--', 'node', '-p', 'process.execPath'], {
      encoding: 'utf8',
      timeout: 240_000,
    }).trim();
    dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-node24-'));
  }, 300_000);

  afterAll(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('is really Node 24', () => {
    expect(execFileSync(node24, ['--version'], { encoding: 'utf8' })).toMatch(/^v24\./);
  });

  it('serves, answers health and docs, and exits 0 on SIGTERM', async () => {
    const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { DATA_DIR: dataDir }, node24);
    const url = await serve.ready(60_000);
    await request(url).get('/health/live').expect(200);
    const ready = await request(url).get('/health/ready').expect(200);
    expect(ready.body.status).toBe('ready');
    await request(url).get('/docs-json').expect(200);
    await request(url).get('/nowhere').expect(404);
    serve.signal('SIGTERM');
    expect(await serve.exited).toBe(0);
  }, 90_000);
});
