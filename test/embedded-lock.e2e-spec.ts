import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import * as path from 'node:path';
import { CLI, ServeProcess, childEnv, runCli } from './support/cli';

/**
 * The lock of the embedded database (`DATA_DIR/pgdata.lock`) between real processes. `migrate` opens the database
 * and closes it: it stands for any second command on the same DATA_DIR.
 */
describe('the embedded database lock', () => {
  let dataDir: string;
  let lockPath: string;

  beforeEach(() => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-lock-'));
    lockPath = path.join(dataDir, 'pgdata.lock');
  });

  afterEach(() => {
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** This machine's identity as a lock records it, for a holder in this pid namespace. */
  const here = () => ({
    host: hostname(),
    bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    pidNamespace: readlinkSync('/proc/self/ns/pid'),
    nonce: 'a-lock-of-someone-else',
    startedAt: new Date().toISOString(),
  });

  /** A pid no process has now: one that has exited (not reused in the meantime: pids are not recycled so soon). */
  const deadPid = (): number => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    return Number(child.stdout.toString());
  };

  it('refuses a lock held in another pid namespace (another container on the volume), naming the file', async () => {
    // PID 1 of another container: from here its pid says nothing (ours may be 1 too); it touched the lock just now.
    const lock = JSON.stringify({ ...here(), pid: 1, pidNamespace: 'pid:[4026599999]' });
    writeFileSync(lockPath, lock);
    const result = await runCli(['migrate'], { DATA_DIR: dataDir });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('is in use by another process (pid 1 on host');
    expect(result.stderr).toContain(`delete ${lockPath}`);
    expect(readFileSync(lockPath, 'utf8')).toBe(lock);
  });

  it('takes over a lock of another pid namespace that its owner stopped refreshing', async () => {
    writeFileSync(lockPath, JSON.stringify({ ...here(), pid: 1, pidNamespace: 'pid:[4026599999]' }));
    const longAgo = new Date(Date.now() - 3_600_000);
    utimesSync(lockPath, longAgo, longAgo);
    const result = await runCli(['migrate'], { DATA_DIR: dataDir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(existsSync(lockPath)).toBe(false);
    expect(result.stdout).toContain('took over the stale lock of the embedded database');
  });

  it('takes over the lock of a dead process on this host, and releases it', async () => {
    writeFileSync(lockPath, JSON.stringify({ ...here(), pid: deadPid() }));
    const result = await runCli(['migrate'], { DATA_DIR: dataDir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(existsSync(lockPath)).toBe(false);
    expect(result.stdout).toContain('took over the stale lock of the embedded database');
  });

  it("honours an older gateway's lock (a bare pid): refused while it lives, taken over once it is gone", async () => {
    writeFileSync(lockPath, String(process.pid));
    const refused = await runCli(['migrate'], { DATA_DIR: dataDir });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`is in use by another process (pid ${process.pid})`);
    expect(readFileSync(lockPath, 'utf8')).toBe(String(process.pid));

    writeFileSync(lockPath, String(deadPid()));
    const taken = await runCli(['migrate'], { DATA_DIR: dataDir });
    expect(taken.stderr).toBe('');
    expect(taken.code).toBe(0);
    expect(existsSync(lockPath)).toBe(false);
    expect(taken.stdout).toContain('took over the stale lock of the embedded database');
  });

  it('stops a serving gateway whose lock another process took over, and makes a deleted lock again', async () => {
    const gateway = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { DATA_DIR: dataDir, LOG_LEVEL: 'info' });
    try {
      await gateway.ready();
      const own = readFileSync(lockPath, 'utf8');
      // Deleted under it (by hand, say): the next heartbeat (every 10 s) makes it again, so a second process is
      // still refused.
      rmSync(lockPath);
      const deadline = Date.now() + 15_000;
      while (!existsSync(lockPath) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(readFileSync(lockPath, 'utf8')).toBe(own);

      // Another container judged it stale and opened the directory: this one must stop writing to it, promptly.
      const other = JSON.stringify({ ...here(), pid: 1, pidNamespace: 'pid:[4026599999]' });
      writeFileSync(lockPath, other);
      const code = await Promise.race([
        gateway.exited,
        new Promise((resolve) => setTimeout(() => resolve('still running'), 15_000)),
      ]);
      expect(code).toBe(1);
      const fatal = gateway.logLines().find((line) => line.level === 60);
      expect(fatal).toEqual(
        expect.objectContaining({
          lock: lockPath,
          owner: expect.stringContaining(`pid 1 on host ${hostname()}`) as unknown,
          msg: expect.stringContaining('taken over by another process') as unknown,
        }),
      );
      expect(gateway.stderr).toContain(`taken over by another process (pid 1 on host ${hostname()}`);
      expect(gateway.stdout).not.toContain('shutting down');
      // The new owner's lock stays.
      expect(readFileSync(lockPath, 'utf8')).toBe(other);
    } finally {
      gateway.signal('SIGKILL');
      await gateway.exited;
    }
  }, 60_000);

  // Two containers on one volume: each gateway is PID 1 of its own pid namespace (unshare needs root, as here).
  const inNamespace = (args: string[]) =>
    spawn('unshare', ['-fp', '--mount-proc', '--kill-child', process.execPath, CLI, ...args], {
      env: childEnv({ DATA_DIR: dataDir }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const unshare = spawnSync('unshare', ['-fp', '--mount-proc', '--kill-child', 'true']).status === 0;
  (unshare ? it : it.skip)('refuses a second PID 1 while the first serves, and leaves its lock in place', async () => {
    const first = inNamespace(['serve', '--port', '0', '--host', '127.0.0.1']);
    const exited = new Promise((resolve) => first.on('close', resolve));
    try {
      let output = '';
      await new Promise<void>((resolve, reject) => {
        first.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (output.includes('serving')) resolve();
        });
        first.on('close', () => reject(new Error(`the first gateway exited:\n${output}`)));
      });
      const lock = readFileSync(lockPath, 'utf8');
      expect(JSON.parse(lock)).toEqual(expect.objectContaining({ pid: 1 }));

      const second = inNamespace(['migrate']);
      let stderr = '';
      second.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const code = await new Promise((resolve) => second.on('close', resolve));
      expect(stderr).toContain('is in use by another process (pid 1 on host');
      expect(code).toBe(1);
      expect(readFileSync(lockPath, 'utf8')).toBe(lock);
    } finally {
      first.kill('SIGKILL'); // --kill-child: the gateway goes with it
      await exited;
    }
  });
});
