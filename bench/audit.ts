/**
 * The audit trail's cost (issues 6 and 8): what `McpTraffic.record` costs on the hot path, and how many
 * records per second the whole pipeline (queue → argument policy → hash chain → batched INSERT) stores into
 * PostgreSQL.
 *
 * A benchmark, not a test: it prints figures and asserts nothing about time. It starts the real gateway in
 * this process on a scratch database (dropped at the end), so `record` is measured exactly as the MCP
 * endpoints call it.
 *
 * Its options are USAGE below (`npm run bench:audit -- --help`).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { AuditTrail } from '../src/audit/audit-trail';
import { startGateway } from '../src/bootstrap';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/logging/logger';
import type { McpExchange } from '../src/traffic/mcp-exchange';
import { McpTraffic } from '../src/traffic/mcp-traffic';
import { parseCommandLine, runScript, wholeNumber } from './command-line';

const USAGE = 'Usage: npm run bench:audit -- [--records 100000] [--batch 500] [--database <postgres admin url>]\n';

function exchange(i: number): McpExchange {
  return {
    at: new Date(),
    requestId: `bench-${i}`,
    surface: 'server',
    ip: '127.0.0.1',
    principal: {
      tid: '11111111-1111-4111-8111-111111111111',
      oid: '33333333-3333-4333-8333-333333333333',
      clientId: '22222222-2222-4222-8222-222222222222',
      appOnly: false,
      scopes: ['access_as_user'],
      roles: ['Gateway.User'],
      name: 'Bench User',
    },
    sessionId: 'session',
    server: { id: '44444444-4444-4444-8444-444444444444', slug: 'weather' },
    method: 'tools/call',
    rpcId: i,
    target: 'forecast',
    arguments: { city: 'Paris', days: 3, apiKey: 'secret', options: { units: 'metric' } },
    decision: 'allowed',
    rule: 'server-role:Gateway.User',
    outcome: 'ok',
    latencyMs: 3.2,
    upstreamMs: 2.9,
    upstreamStatus: 200,
  };
}

async function main(): Promise<void> {
  const { values } = parseCommandLine({
    options: {
      records: { type: 'string', default: '100000' },
      batch: { type: 'string', default: '500' },
      database: {
        type: 'string',
        default: process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test',
      },
    },
  });
  const RECORDS = wholeNumber(values.records, 'records', 1);
  const batchSize = wholeNumber(values.batch, 'batch', 1, 10_000);
  const name = `audit_bench_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = new Client({ connectionString: values.database });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(values.database);
  url.pathname = `/${name}`;
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'audit-bench-'));
  try {
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      DATABASE_URL: url.toString(),
      DISCOVERY_INTERVAL_MS: '0',
      HEALTH_PROBE_INTERVAL_MS: '0',
      AUDIT_BATCH_SIZE: String(batchSize),
      AUDIT_QUEUE_CAPACITY: String(Math.max(RECORDS, 10_000)),
      LOG_LEVEL: 'warn',
    });
    const gateway = await startGateway(config, { logger: createLogger({ logLevel: 'warn' }) });
    try {
      const traffic = gateway.app.get(McpTraffic);
      const trail = gateway.app.get(AuditTrail);
      const exchanges = Array.from({ length: RECORDS }, (_, i) => exchange(i));

      // Hot path: synchronous calls in chunks of 1,000 (nothing else runs between them); per-call cost per chunk.
      const perCallNs: number[] = [];
      const started = performance.now();
      for (let offset = 0; offset < RECORDS; offset += 1_000) {
        const t0 = process.hrtime.bigint();
        const end = Math.min(offset + 1_000, RECORDS);
        for (let i = offset; i < end; i++) traffic.record(exchanges[i]!);
        perCallNs.push(Number(process.hrtime.bigint() - t0) / (end - offset));
        // Let the writer run between chunks, as it would between requests.
        await new Promise((resolve) => setImmediate(resolve));
      }
      await trail.flush();
      const elapsedMs = performance.now() - started;
      const stats = trail.stats();
      perCallNs.sort((a, b) => a - b);
      const pick = (q: number) => perCallNs[Math.min(perCallNs.length - 1, Math.floor(q * perCallNs.length))]!;
      const counter = new Client({ connectionString: url.toString() });
      await counter.connect();
      const n = Number((await counter.query<{ n: string }>('SELECT count(*) AS n FROM audit_records')).rows[0]!.n);
      await counter.end();
      const result = {
        records: RECORDS,
        batchSize,
        storedRecords: n,
        recordCallNs: { p50: Math.round(pick(0.5)), p99: Math.round(pick(0.99)), max: Math.round(pick(1)) },
        pipelineRecordsPerSecond: Math.round((RECORDS / elapsedMs) * 1000),
        elapsedMs: Math.round(elapsedMs),
        spooled: stats.spooled,
        host: { cpus: os.cpus().length, loadavg: os.loadavg().map((x) => Math.round(x * 10) / 10) },
      };
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } finally {
      await gateway.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

runScript('bench:audit', USAGE, main);
