import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { runCli, ServeProcess } from './support/cli';
import { parsePrometheusText, valueOf } from './support/prometheus-text';
import { eventually, waitUntil } from './support/eventually';
import { createScratchDatabase, POSTGRES_URL, REDIS_URL } from './support/services';
import { SlowUpstream } from './support/slow-upstream';

const STARTUP_MS = 180_000;

/** `mcp-gateway serve --workers N` through the built CLI (`npm run build` first). */
describe('mcp-gateway serve --workers', () => {
  describe('refuses what it cannot run, with exit 2', () => {
    it.each([['0'], ['abc'], ['2.5'], ['129'], ['10000']])('--workers %s', async (value) => {
      const result = await runCli(['serve', '--workers', value], { DATABASE_URL: POSTGRES_URL, REDIS_URL });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `option '--workers <n>' argument '${value}' is invalid. must be a whole number from 1 to 128, or auto`,
      );
    });

    it('WORKERS=abc, as a configuration error', async () => {
      const result = await runCli(['serve'], { WORKERS: 'abc' });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        'mcp-gateway: invalid configuration\n  WORKERS: must be a whole number from 1 to 128, or auto\n',
      );
    });

    it.each([
      ['REDIS_URL', { DATABASE_URL: POSTGRES_URL }],
      ['DATABASE_URL', { REDIS_URL }],
      ['DATABASE_URL and REDIS_URL', {}],
    ])('more than one worker without %s', async (missing, env) => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-workers-refused-'));
      try {
        const result = await runCli(['serve', '--workers', '2', '--port', '0'], { ...env, DATA_DIR: dataDir });
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr).toBe(
          `mcp-gateway: 2 workers need ${missing}: workers share nothing but PostgreSQL and Redis ` +
            '(the embedded database and the in-process store belong to one process). ' +
            `Set ${missing.includes(' and ') ? 'them' : 'it'}, or serve with --workers 1.\n`,
        );
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });

  it('exits 1 when a worker cannot start, stopping the others', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-workers-failing-'));
    try {
      const result = await runCli(['serve', '--workers', '2', '--port', '0', '--host', '127.0.0.1', '--no-migrate'], {
        DATA_DIR: dataDir,
        DATABASE_URL: POSTGRES_URL,
        REDIS_URL: 'redis://127.0.0.1:1',
      });
      expect(result.code).toBe(1);
      // Each worker names itself and its reason; the primary names the first to exit.
      expect(result.stderr).toMatch(
        /mcp-gateway: worker [12] could not start: Redis at redis:\/\/127\.0\.0\.1:1 did not answer/,
      );
      expect(result.stderr).toMatch(
        /mcp-gateway: could not start: worker [12] exited \(code 1\) before it was serving/,
      );
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it(
    'stops the others within SHUTDOWN_GRACE_MS and AUDIT_WRITE_TIMEOUT_MS when a worker dies before all serve, and exits 1 naming it',
    async () => {
      const database = await createScratchDatabase();
      const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-workers-dying-'));
      const holder = new Client({ connectionString: database.url });
      let serve: ServeProcess | undefined;
      let stuck: number | undefined;
      try {
        expect((await runCli(['migrate'], { DATABASE_URL: database.url })).code).toBe(0);
        // Another session holds the migrations table (a migration of the next release, say): every worker's start
        // waits on it for DATABASE_QUERY_TIMEOUT_MS, ten minutes, before it could serve.
        await holder.connect();
        await holder.query('BEGIN');
        await holder.query('LOCK TABLE _prisma_migrations IN ACCESS EXCLUSIVE MODE');
        serve = new ServeProcess(['--workers', '2', '--port', '0', '--host', '127.0.0.1', '--no-migrate'], {
          AUTH_MODE: 'dev',
          DATA_DIR: dataDir,
          DATABASE_URL: database.url,
          REDIS_URL,
          DATABASE_QUERY_TIMEOUT_MS: '600000',
          SHUTDOWN_GRACE_MS: '0',
          AUDIT_WRITE_TIMEOUT_MS: '100',
        });
        // Asked on a session of its own: the holder's transaction would see the activity of its start throughout.
        await eventually(async () => expect(await sessionsWaitingOnLocks(database.url)).toBe(2), STARTUP_MS);
        const pidOf = (worker: number): number =>
          serve!.logLines().find((line) => line.msg === 'worker started' && line.worker === worker)!
            .workerPid as number;
        stuck = pidOf(1);
        // Worker 2 dies (the OOM killer, a crash) while worker 1 still waits to start.
        process.kill(pidOf(2), 'SIGKILL');
        expect(await serve.exited).toBe(1);

        expect(serve.stderr).toContain(
          'mcp-gateway: could not start: worker 2 exited (SIGKILL) before it was serving\n',
        );
        expect(serve.stderr).toContain(
          'mcp-gateway: shutdown failed: worker 1 still draining after SHUTDOWN_GRACE_MS plus AUDIT_WRITE_TIMEOUT_MS ' +
            '(100 ms): exiting without draining\n',
        );
        const lines = serve.logLines();
        expect(lines.find((line) => String(line.msg).startsWith('workers still draining after'))).toMatchObject({
          role: 'primary',
          boundMs: 100,
          workers: [{ worker: 1, workerPid: stuck }],
        });
        // Told again, it exits: it was starting, with nothing to spool.
        expect(lines.find((line) => line.msg === 'worker stopped')).toMatchObject({
          worker: 1,
          workerPid: stuck,
          signal: 'SIGTERM',
        });
        const pid = stuck;
        await waitUntil(() => !isRunning(pid), 'worker 1 is gone');
      } finally {
        if (stuck !== undefined && isRunning(stuck)) process.kill(stuck, 'SIGKILL');
        serve?.signal('SIGKILL');
        await serve?.exited;
        await holder.end();
        await database.drop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    STARTUP_MS,
  );

  it(
    'passes a second signal on to the workers, which spool their queued audit records and exit, exit 1',
    async () => {
      const database = await createScratchDatabase();
      const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-workers-forced-'));
      // Nothing is written before the signals: no flush tick, no full batch. The drain waits for the held requests.
      const serve = new ServeProcess(['--workers', '2', '--port', '0', '--host', '127.0.0.1'], {
        AUTH_MODE: 'dev',
        DATA_DIR: dataDir,
        DATABASE_URL: database.url,
        REDIS_URL,
        AUDIT_FLUSH_INTERVAL_MS: '60000',
        AUDIT_BATCH_SIZE: '10000',
        SHUTDOWN_GRACE_MS: '600000',
      });
      const held = [new net.Socket(), new net.Socket()];
      try {
        const url = await primaryServing(serve);
        const requestIds = Array.from({ length: 20 }, (_, i) => `forced-${i}-${randomUUID()}`);
        const servedBy = new Set<unknown>();
        for (const [i, requestId] of requestIds.entries()) {
          const answer = await freshRequest(`${url}/mcp`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-request-id': requestId },
            body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/list' }),
          });
          expect(answer.status).toBe(401);
        }
        await eventually(() => {
          for (const line of serve.logLines()) {
            const id = (line.req as { id?: string } | undefined)?.id;
            if (id !== undefined && requestIds.includes(id)) servedBy.add(line.worker);
          }
          expect([...servedBy].sort()).toEqual([1, 2]);
        });
        // A request whose body never comes, on each worker (the cluster hands connections out in turn): "100
        // Continue" says a worker is answering it, so its drain waits.
        const { port } = new URL(url);
        for (const socket of held) {
          await new Promise<void>((resolve, reject) => {
            socket.once('error', reject);
            socket.on('data', (chunk: Buffer) => {
              if (chunk.toString().startsWith('HTTP/1.1 100')) resolve();
            });
            socket.connect(Number(port), '127.0.0.1', () =>
              socket.write(
                'POST /api/v1/servers HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
                  'Content-Length: 100\r\nExpect: 100-continue\r\n\r\n',
              ),
            );
          });
        }
        serve.signal('SIGTERM');
        await waitUntil(
          () => serve.logLines().filter((line) => line.msg === 'shutting down: draining requests').length === 2,
          'both workers drain',
        );
        serve.signal('SIGTERM');
        expect(await serve.exited).toBe(1);

        const lines = serve.logLines();
        expect(lines.filter((line) => String(line.msg).startsWith('second signal: exiting without draining'))).toEqual([
          expect.objectContaining({ worker: expect.any(Number) as unknown }),
          expect.objectContaining({ worker: expect.any(Number) as unknown }),
        ]);
        const stops = lines.filter((line) => line.msg === 'worker stopped');
        expect(stops.map((line) => [line.worker, line.code, line.signal]).sort()).toEqual([
          [1, 1, null],
          [2, 1, null],
        ]);
        const spoolDir = path.join(dataDir, 'audit-spool');
        const spooled = readdirSync(spoolDir)
          .filter((name) => name.endsWith('.ndjson'))
          .flatMap((name) => readFileSync(path.join(spoolDir, name), 'utf8').trim().split('\n'))
          .map((line) => (JSON.parse(line) as { requestId: string }).requestId);
        expect(spooled.sort()).toEqual([...requestIds].sort());
      } finally {
        for (const socket of held) socket.destroy();
        serve.signal('SIGKILL');
        await serve.exited;
        await database.drop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
    STARTUP_MS,
  );

  it(
    'kills a worker that is still running when the bound after the second signal is over, and exits 1',
    async () => {
      await withStoppedWorker('stuck', {}, async (serve) => {
        // A stopped process neither drains nor hears SIGTERM, as a worker stuck in a loop: only SIGKILL ends it.
        serve.signal('SIGTERM');
        await waitUntil(
          () => serve.logLines().some((line) => line.msg === 'worker stopped' && line.worker === 2),
          'worker 2 drains and stops',
        );
        serve.signal('SIGTERM');
        expect(await serve.exited).toBe(1);
        expect(
          serve
            .logLines()
            .find((line) => line.msg === 'workers still running once told to exit without draining: killed'),
        ).toMatchObject({ role: 'primary', workers: [1] });
      });
    },
    STARTUP_MS,
  );

  it(
    'after one signal, has a worker still draining past SHUTDOWN_GRACE_MS and AUDIT_WRITE_TIMEOUT_MS told to exit, kills it when stuck, and exits 1',
    async () => {
      const env = { SHUTDOWN_GRACE_MS: '0', AUDIT_WRITE_TIMEOUT_MS: '100' };
      await withStoppedWorker('overdue', env, async (serve, stuck) => {
        // Stopped, it never drains, as a worker whose drain hangs on an upstream call or a database write.
        serve.signal('SIGTERM');
        expect(await serve.exited).toBe(1);

        const lines = serve.logLines();
        // Worker 2 has drained by then, or is told to exit too: the machine's load decides, not the test.
        expect(lines.find((line) => String(line.msg).startsWith('workers still draining after'))).toMatchObject({
          role: 'primary',
          level: 40,
          boundMs: 100,
          workers: expect.arrayContaining([{ worker: 1, workerPid: stuck }]) as unknown,
        });
        expect(
          lines.find((line) => line.msg === 'workers still running once told to exit without draining: killed'),
        ).toMatchObject({ role: 'primary', workers: [1], workerPids: [stuck] });
        expect(lines.some((line) => String(line.msg).startsWith('second signal'))).toBe(false);
      });
    },
    STARTUP_MS,
  );

  describe('two workers on PostgreSQL and Redis', () => {
    let database: { url: string; drop: () => Promise<void> };
    let dataDir: string;
    let slow: SlowUpstream;
    let serve: ServeProcess;
    let url: string;
    let token: string;
    const env = (): Record<string, string> => ({
      AUTH_MODE: 'dev',
      DATA_DIR: dataDir,
      DATABASE_URL: database.url,
      REDIS_URL,
      UPSTREAM_ALLOWED_HOSTS: 'loopback',
    });

    beforeAll(async () => {
      database = await createScratchDatabase();
      dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-workers-'));
      slow = await SlowUpstream.start();
      serve = new ServeProcess(['--workers', '2', '--port', '0', '--host', '127.0.0.1'], env());
      url = await primaryServing(serve);
      const minted = await runCli(['token', '--roles', 'Gateway.Admin'], env());
      expect(minted.code).toBe(0);
      token = minted.stdout.trim();
    }, STARTUP_MS);

    afterAll(async () => {
      serve?.signal('SIGKILL');
      await serve?.exited;
      await slow?.stop();
      await database?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    });

    /** The worker whose log holds the completed request `requestId`. */
    async function workerThatServed(requestId: string): Promise<{ worker: number; pid: number }> {
      return eventually(() => {
        const line = serve.logLines().find((each) => (each.req as { id?: string } | undefined)?.id === requestId);
        if (!line) throw new Error(`no log line for request ${requestId}`);
        return { worker: line.worker as number, pid: line.pid as number };
      });
    }

    it('migrates once in the primary; both workers answer on the one port, and say who they are in their logs', async () => {
      const lines = serve.logLines();
      expect(lines.filter((line) => line.msg === 'migrations applied')).toEqual([
        expect.objectContaining({ role: 'primary' }),
      ]);
      // Periodic work runs once per machine: worker 1 probes, worker 2 leaves it to worker 1.
      expect(lines.find((line) => line.msg === 'upstream health probing started')).toMatchObject({ worker: 1 });
      expect(lines.find((line) => line.msg === 'upstream health probing is left to worker 1')).toMatchObject({
        worker: 2,
      });

      const served = new Map<number, number>();
      await eventually(async () => {
        const requestId = randomUUID();
        const res = await freshRequest(`${url}/api/v1/servers`, { headers: { 'x-request-id': requestId } });
        expect(res.status).toBe(200);
        const { worker, pid } = await workerThatServed(requestId);
        served.set(worker, pid);
        expect([...served.keys()].sort()).toEqual([1, 2]);
      });
      expect(new Set(served.values()).size).toBe(2);
      expect(served.has(serve.pid!)).toBe(false);
    });

    it('continues an MCP session created on one worker on the other', async () => {
      const initId = randomUUID();
      const init = await mcpPost(url, token, undefined, initId, {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'workers', version: '1' } },
      });
      expect(init.status).toBe(200);
      const sessionId = String(init.headers['mcp-session-id']);
      const created = await workerThatServed(initId);
      const initialized = await mcpPost(url, token, sessionId, randomUUID(), {
        jsonrpc: '2.0',
        method: 'notifications/initialized',
      });
      expect(initialized.status).toBe(202);

      const failures: string[] = [];
      await eventually(async () => {
        const requestId = randomUUID();
        const res = await mcpPost(url, token, sessionId, requestId, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
        if (res.status !== 200 || !rpcResult(res.text)) failures.push(`${res.status} ${res.text}`);
        expect((await workerThatServed(requestId)).worker).not.toBe(created.worker);
      });
      expect(failures).toEqual([]);
    });

    it('answers /metrics for both workers, whichever one a scrape reaches', async () => {
      const route = { method: 'GET', route: '/api/v1/servers', status: '200' };
      /** A scrape, the worker that answered it, and the families it holds (the parser checks the format). */
      const scrape = async () => {
        const requestId = randomUUID();
        const res = await freshRequest(`${url}/metrics`, { headers: { 'x-request-id': requestId } });
        expect(res.status).toBe(200);
        return { families: parsePrometheusText(res.text), worker: (await workerThatServed(requestId)).worker };
      };
      const before = valueOf((await scrape()).families, 'mcp_gateway_http_requests_total', route) ?? 0;

      // Requests until both workers have served some.
      const servedBy = new Set<number>();
      let made = 0;
      while (servedBy.size < 2 && made < 50) {
        const requestId = randomUUID();
        const res = await freshRequest(`${url}/api/v1/servers`, { headers: { 'x-request-id': requestId } });
        expect(res.status).toBe(200);
        made++;
        servedBy.add((await workerThatServed(requestId)).worker);
      }
      expect([...servedBy].sort()).toEqual([1, 2]);

      // Every scrape counts all of them, whichever worker answers it; until both workers have answered one.
      const scrapedBy = new Set<number>();
      await eventually(async () => {
        const { families, worker } = await scrape();
        expect(valueOf(families, 'mcp_gateway_http_requests_total', route)).toBe(before + made);
        // Summed over the workers, except what says otherwise: Redis is up when it is up for every worker.
        expect(valueOf(families, 'mcp_gateway_ratelimit_redis_up')).toBe(1);
        expect(valueOf(families, 'process_resident_memory_bytes')).toBeGreaterThan(0);
        scrapedBy.add(worker);
        expect([...scrapedBy].sort()).toEqual([1, 2]);
      });
    });

    it('replaces a SIGKILLed worker in its slot, and the port keeps answering', async () => {
      const listening = (): Record<string, unknown>[] =>
        serve.logLines().filter((line) => line.role === 'primary' && line.msg === 'worker listening');
      const victim = listening().findLast((line) => line.worker === 2)!;
      const before = listening().length;
      process.kill(victim.workerPid as number, 'SIGKILL');
      await waitUntil(
        () => serve.logLines().some((line) => line.msg === 'worker exited: starting another in its place'),
        'the primary notices',
      );
      expect(
        serve.logLines().find((line) => line.msg === 'worker exited: starting another in its place'),
      ).toMatchObject({ worker: 2, workerPid: victim.workerPid, signal: 'SIGKILL', restartInMs: 0 });
      // While the new worker starts, the other one answers everything.
      const statuses: number[] = [];
      while (listening().length === before) {
        statuses.push((await freshRequest(`${url}/health/ready`)).status);
      }
      expect(statuses.every((status) => status === 200)).toBe(true);
      const replacement = listening().at(-1)!;
      expect(replacement).toMatchObject({ worker: 2 });
      expect(replacement.workerPid).not.toBe(victim.workerPid);
      await eventually(async () => {
        const requestId = randomUUID();
        expect((await freshRequest(`${url}/api/v1/servers`, { headers: { 'x-request-id': requestId } })).status).toBe(
          200,
        );
        expect(await workerThatServed(requestId)).toEqual({ worker: 2, pid: replacement.workerPid });
      });
    });

    it('drains every worker on SIGTERM (an in-flight tool call completes) and exits 0', async () => {
      const slug = `slow-${randomUUID().slice(0, 8)}`;
      const registered = await freshRequest(`${url}/api/v1/servers`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: `com.example.workers/${slug}`, slug, url: slow.url }),
      });
      expect(registered.status).toBe(201);
      // Discovery ran on the worker that took the registration; the other one learns of it through
      // Redis. Fresh connections alternate between the workers, so two listings in a row ask both.
      await eventually(async () => {
        for (let i = 0; i < 2; i += 1) {
          const listed = await freshRequest(`${url}/mcp/${slug}/tools`, {
            headers: { authorization: `Bearer ${token}` },
          });
          expect(listed.text).toContain('"slow"');
        }
      }, 30_000);

      const label = `drain-${randomUUID().slice(0, 8)}`;
      const call = freshRequest(`${url}/mcp/${slug}/tools/slow`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ label }),
      });
      let answered: { status: number; text: string } | undefined;
      void call.then((answer) => (answered = answer));
      await waitUntil(() => slow.call(label) !== undefined || answered !== undefined, 'the upstream runs the call');
      expect(answered).toBeUndefined();
      serve.signal('SIGTERM');
      await waitUntil(
        () => serve.logLines().filter((line) => line.msg === 'shutting down: draining requests').length === 2,
        'both workers drain',
      );
      slow.releaseAll();
      const answer = await call;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.text)).toMatchObject({ content: [{ type: 'text', text: `released ${label}` }] });
      expect(await serve.exited).toBe(0);
      const stops = serve.logLines().filter((line) => line.msg === 'worker stopped');
      expect(stops.map((line) => [line.worker, line.code]).sort()).toEqual([
        [1, 0],
        [2, 0],
      ]);
      expect(serve.logLines()).toContainEqual(expect.objectContaining({ role: 'primary', msg: 'stopped' }));
    });
  });
});

/** Waits for the primary's own "serving" line: every worker listens by then. */
/**
 * `serve --workers 2` on a scratch database with worker 1 stopped (SIGSTOP: it neither drains nor hears a signal, as a
 * stuck worker); `act` signals the primary and checks what it did. The stopped worker must be gone afterwards.
 */
async function withStoppedWorker(
  name: string,
  env: Record<string, string>,
  act: (serve: ServeProcess, stuck: number) => Promise<void>,
): Promise<void> {
  const database = await createScratchDatabase();
  const dataDir = mkdtempSync(path.join(tmpdir(), `mcp-gateway-workers-${name}-`));
  const serve = new ServeProcess(['--workers', '2', '--port', '0', '--host', '127.0.0.1'], {
    AUTH_MODE: 'dev',
    DATA_DIR: dataDir,
    DATABASE_URL: database.url,
    REDIS_URL,
    ...env,
  });
  let stuck: number | undefined;
  try {
    await primaryServing(serve);
    const listening = serve.logLines().find((line) => line.msg === 'worker listening' && line.worker === 1);
    stuck = listening?.workerPid as number;
    expect(stuck).toEqual(expect.any(Number));
    process.kill(stuck, 'SIGSTOP');
    await act(serve, stuck);
    const pid = stuck;
    await waitUntil(() => !isRunning(pid), 'the stuck worker is gone');
  } finally {
    if (stuck !== undefined && isRunning(stuck)) process.kill(stuck, 'SIGKILL');
    serve.signal('SIGKILL');
    await serve.exited;
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function primaryServing(serve: ServeProcess): Promise<string> {
  await serve.ready(STARTUP_MS);
  const line = await eventually(() => {
    const serving = serve
      .logLines()
      .find((each) => each.role === 'primary' && String(each.msg).includes('serving with 2 workers'));
    if (!serving) throw new Error(`the primary did not report serving:\n${serve.stderr}`);
    return serving;
  }, STARTUP_MS);
  return line.url as string;
}

interface FreshResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request on a connection of its own, so the cluster hands each one to the next worker. */
function freshRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<FreshResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: init.method ?? 'GET', headers: init.headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

function mcpPost(
  url: string,
  token: string,
  sessionId: string | undefined,
  requestId: string,
  message: Record<string, unknown>,
): Promise<FreshResponse> {
  return freshRequest(`${url}/mcp`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2025-06-18',
      'x-request-id': requestId,
      ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    },
    body: JSON.stringify(message),
  });
}

/** The `result` of a JSON-RPC answer sent as JSON or as one server-sent event. */
function rpcResult(text: string): unknown {
  const json = text.trimStart().startsWith('{')
    ? text
    : text
        .split('\n')
        .filter((line) => line.startsWith('data: '))
        .map((line) => line.slice('data: '.length))
        .join('');
  try {
    return (JSON.parse(json) as { result?: unknown }).result;
  } catch {
    return undefined;
  }
}

/** How many sessions of the database at `url` wait on a lock now. */
async function sessionsWaitingOnLocks(url: string): Promise<number> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    return rows.length;
  } finally {
    await client.end();
  }
}

/** Whether process `pid` runs (a zombie, killed and not yet reaped, does not). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
