import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { BenchReport } from '../bench/gateway';
import { PATHS } from '../bench/gateway';
import { Client } from 'pg';
import { POSTGRES_URL } from './support/services';

const REPO_ROOT = path.resolve(__dirname, '..');
const CONCURRENCY = [1, 8, 32, 128];
/** Set with `--gateway-env`: not the bench's own value (it sets none), so it shows the option reached the gateway. */
const FLUSH_INTERVAL_MS = '150';

/** `npm run bench -- --quick`, end to end: every section is there and nothing failed. No timing is judged. */
describe('npm run bench --quick', () => {
  let out: string;
  let report: BenchReport;
  let svg: string;
  let stdout = '';

  beforeAll(async () => {
    out = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-bench-test-'));
    const run = await runBench([
      '--quick',
      '--out',
      out,
      '--gateway-env',
      `AUDIT_FLUSH_INTERVAL_MS=${FLUSH_INTERVAL_MS}`,
    ]);
    stdout = run.stdout;
    if (run.code !== 0)
      throw new Error(`the bench exited with ${run.code}:\n${run.stdout}\n${run.stderr.slice(-4000)}`);
    const files = readdirSync(out);
    const json = files.find((file) => file.endsWith('.json'));
    const chart = files.find((file) => file.endsWith('.svg'));
    if (!json || !chart) throw new Error(`no results in ${out}: ${files.join(', ')}`);
    report = JSON.parse(readFileSync(path.join(out, json), 'utf8')) as BenchReport;
    svg = readFileSync(path.join(out, chart), 'utf8');
  }, 300_000);

  afterAll(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('measures tools/call on every path at every concurrency, without an error', () => {
    const measured = report.calls.map((m) => `${m.path}@${m.concurrency}`).sort();
    expect(measured).toEqual(PATHS.flatMap((p) => CONCURRENCY.map((c) => `${p}@${c}`)).sort());
    for (const m of report.calls) {
      expect({ cell: `${m.path}@${m.concurrency}`, errors: m.errors, warmupErrors: m.warmupErrors }).toEqual({
        cell: `${m.path}@${m.concurrency}`,
        errors: 0,
        warmupErrors: 0,
      });
      expect(m.calls).toBeGreaterThan(0);
      for (const value of [m.p50, m.p90, m.p99, m.max, m.callsPerSecond]) expect(Number.isFinite(value)).toBe(true);
      expect(m.upstreamCpuMsPerCall).not.toBeNull();
      if (m.path === 'direct') expect(m.gatewayCpuMsPerCall).toBeNull();
      else expect(m.gatewayCpuMsPerCall).not.toBeNull();
      expect(m.gatewayPeakRssMb).toBeGreaterThan(0);
    }
  });

  it("reads the local PostgreSQL's CPU on the paths through the gateway: the audit trail's inserts", () => {
    const throughGateway = report.calls.filter((m) => m.path !== 'direct' && m.path !== 'floor');
    for (const m of report.calls) {
      if (throughGateway.includes(m)) expect(m.databaseCpuMsPerCall).toBeGreaterThanOrEqual(0);
      else expect(m.databaseCpuMsPerCall).toBeNull();
    }
    // Every call through the gateway is audited: PostgreSQL took some CPU for them, over all those cells.
    const total = throughGateway.reduce((sum, m) => sum + (m.databaseCpuMsPerCall ?? 0) * m.calls, 0);
    expect(total).toBeGreaterThan(0);
    expect(stdout).toContain('db cpu ms/call');
  });

  it('reports the added latency of each gateway path against the direct one', () => {
    expect(report.addedLatency.map((a) => `${a.path}@${a.concurrency}`).sort()).toEqual(
      PATHS.filter((p) => p !== 'direct')
        .flatMap((p) => CONCURRENCY.map((c) => `${p}@${c}`))
        .sort(),
    );
  });

  it('lists 100 servers × 50 tools on /mcp, without an error', () => {
    expect(report.toolsList).toMatchObject({ servers: 100, tools: 5000, errors: 0, warmupErrors: 0 });
    expect(report.toolsList?.calls).toBeGreaterThan(0);
  });

  it('times serve to ready on PostgreSQL and embedded, and reads idle RSS', () => {
    for (const start of [report.startup?.postgres, report.startup?.embeddedFirst, report.startup?.embeddedReopen]) {
      expect(start?.readyMs).toBeGreaterThan(0);
      expect(start?.idleRssMb).toBeGreaterThan(0);
    }
    expect(report.idleRssMb.afterStart).toBeGreaterThan(0);
    expect(report.idleRssMb.withCatalog).toBeGreaterThan(0);
    expect(report.settlingRssMb.withCatalog).toBeGreaterThan(0);
  });

  it('runs on a database of its own and drops it at the end', async () => {
    expect(report.options.scratchDatabase).toBe(true);
    const name = new URL(String(report.options.databaseUrl)).pathname.slice(1);
    expect(name).toMatch(/^gw_test_/);
    expect(stdout).toContain(`database: ${name} on `);
    const client = new Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname = $1', [name]);
      expect(rows).toEqual([]);
    } finally {
      await client.end();
    }
  });

  it('starts the gateway with what --gateway-env sets, and says so', () => {
    expect(report.gatewayEnvironment).toContain('AUDIT_FLUSH_INTERVAL_MS');
    expect(report.options.gatewayEnv).toEqual({ AUDIT_FLUSH_INTERVAL_MS: FLUSH_INTERVAL_MS });
    expect(stdout).toContain(`set over the gateway's environment: AUDIT_FLUSH_INTERVAL_MS=${FLUSH_INTERVAL_MS}`);
  });

  it.each([['NO_EQUALS_SIGN'], ['=value']])('refuses --gateway-env %s with a usage error', async (item) => {
    const { code, stderr } = await runBench(['--gateway-env', item]);
    expect({ code, problem: stderr.split('\n')[0] }).toEqual({ code: 2, problem: 'bench: --gateway-env: NAME=VALUE' });
  });

  it('records the machine and its load, prints a table and draws the chart', () => {
    expect(report.machine).toMatchObject({ cpus: expect.any(Number), loadAverageBefore: expect.any(Array) });
    expect(report.calls.every((m) => m.loadAverage.length === 3)).toBe(true);
    expect(report.targets.length).toBeGreaterThan(0);
    expect(stdout).toContain('gateway-added latency');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('concurrency 128');
  });
});

/**
 * Every bench script's command line, refused before anything starts: nothing here reaches a database. The scripts
 * are run as `npm run <name>` runs them, without npm.
 */
describe('the command line of the bench scripts', () => {
  const SCRIPTS = [
    ['bench', 'bench/gateway.ts', ['--duration', '99'], 'bench: --duration must be a whole number ≥ 100'],
    [
      'bench:registry',
      'bench/registry.ts',
      ['--tools', '201'],
      'bench:registry: --tools must be a whole number from 1 to 200',
    ],
    ['bench:audit', 'bench/audit.ts', ['--records', 'many'], 'bench:audit: --records must be a whole number ≥ 1'],
    [
      'bench:ratelimit',
      'bench/ratelimit.ts',
      ['--decisions', '0'],
      'bench:ratelimit: --decisions must be a whole number ≥ 1',
    ],
    ['bench:retention', 'bench/retention.ts', ['--seconds=-1'], 'bench:retention: --seconds: a positive number'],
  ] as const;

  it.each(SCRIPTS)('npm run %s -- --help prints its usage and exits 0', async (name, script) => {
    const { code, stdout, stderr } = await runBench(['--help'], script);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout.startsWith(`Usage: npm run ${name} -- [`)).toBe(true);
  });

  it.each(SCRIPTS)('npm run %s refuses an option it does not know, with its usage (exit 2)', async (name, script) => {
    const { code, stdout, stderr } = await runBench(['--no-such-option', '1'], script);
    const [problem, blank, usage] = stderr.split('\n');
    expect({ code, stdout, blank }).toEqual({ code: 2, stdout: '', blank: '' });
    expect(problem).toMatch(new RegExp(`^${name}: Unknown option '--no-such-option'`));
    expect(usage).toMatch(new RegExp(`^Usage: npm run ${name} -- `));
  });

  it.each(SCRIPTS)('npm run %s refuses an argument that is no option (exit 2)', async (name, script) => {
    const { code, stderr } = await runBench(['stray'], script);
    expect({ code, problem: stderr.split('\n')[0] }).toEqual({
      code: 2,
      problem: expect.stringMatching(new RegExp(`^${name}: Unexpected argument 'stray'`)),
    });
  });

  it.each(SCRIPTS)('npm run %s refuses an option without its value (exit 2)', async (name, script, [given]) => {
    // The option of the out-of-range case, given last with nothing after it.
    const option = given.split('=')[0]!;
    const { code, stderr } = await runBench([option], script);
    expect({ code, problem: stderr.split('\n')[0] }).toEqual({
      code: 2,
      problem: `${name}: Option '${option} <value>' argument missing`,
    });
  });

  it.each(SCRIPTS)('npm run %s refuses a value out of range (exit 2)', async (_name, script, args, problem) => {
    const { code, stderr } = await runBench([...args], script);
    expect({ code, problem: stderr.split('\n')[0] }).toEqual({ code: 2, problem });
  });
});

/** A bench script (`bench/gateway.ts` unless told) with `args`, to its end: its exit code and what it printed. */
async function runBench(
  args: string[],
  script = 'bench/gateway.ts',
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['-r', './bench/swc-register.cjs', script, ...args], {
    cwd: REPO_ROOT,
    env: process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}
