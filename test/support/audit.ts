import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { Client } from 'pg';
import { AuditTrail } from '../../src/audit/audit-trail';
import { AuditRepository } from '../../src/audit/audit.repository';
import { type VerifyReport, verifyAuditTrail } from '../../src/audit/audit-verifier';
import type { McpExchange } from '../../src/traffic/mcp-exchange';
import { McpTraffic } from '../../src/traffic/mcp-traffic';

/** An MCP exchange as the endpoints report one; every field can be overridden. */
export function exchangeFactory(overrides: Partial<McpExchange> = {}): McpExchange {
  return {
    at: new Date(),
    requestId: randomUUID(),
    surface: 'server',
    ip: '127.0.0.1',
    principal: {
      tid: '11111111-1111-4111-8111-111111111111',
      oid: randomUUID(),
      clientId: '22222222-2222-4222-8222-222222222222',
      appOnly: false,
      scopes: ['access_as_user'],
      roles: ['Gateway.User'],
      name: 'Ada Lovelace',
    },
    sessionId: randomUUID(),
    server: { id: randomUUID(), slug: 'weather' },
    method: 'tools/call',
    rpcId: 1,
    target: 'forecast',
    arguments: { city: 'Paris' },
    decision: 'allowed',
    rule: 'server-role:Gateway.User',
    outcome: 'ok',
    latencyMs: 12.5,
    upstreamMs: 10.25,
    upstreamStatus: 200,
    ...overrides,
  };
}

/** What a test needs of a running gateway's audit trail. */
export function auditOf(app: INestApplication): {
  traffic: McpTraffic;
  trail: AuditTrail;
  verify: () => Promise<VerifyReport>;
} {
  const repository = app.get(AuditRepository);
  return {
    traffic: app.get(McpTraffic),
    trail: app.get(AuditTrail),
    verify: () => verifyAuditTrail(repository),
  };
}

/** Runs SQL against a database directly, as an operator (or an attacker) would. */
export async function sql<T = Record<string, unknown>>(
  url: string,
  text: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}
