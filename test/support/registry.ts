import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { POSTGRES_URL } from './services';

/** A short random token, so every test's data is its own. */
export function token(): string {
  return randomBytes(4).toString('hex');
}

/** A unique reverse-DNS server name. */
export function uniqueName(last = `srv-${token()}`): string {
  return `io.test-${token()}/${last}`;
}

/** A public address that needs no DNS (TEST-NET-3), allowed by the default URL policy. */
export const PUBLIC_URL = 'https://203.0.113.10/mcp';

/** A registration body with partial overrides. */
export function serverBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: uniqueName(), url: PUBLIC_URL, ...overrides };
}

/** Rows stored for a name, straight from PostgreSQL: servers and version history. */
export async function storedRows(name: string, url = POSTGRES_URL): Promise<{ servers: number; versions: number }> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const servers = await client.query<{ n: string }>('SELECT count(*) AS n FROM servers WHERE name = $1', [name]);
    const versions = await client.query<{ n: string }>('SELECT count(*) AS n FROM server_versions WHERE name = $1', [
      name,
    ]);
    return { servers: Number(servers.rows[0]?.n), versions: Number(versions.rows[0]?.n) };
  } finally {
    await client.end();
  }
}

export const PROBLEM_JSON = /^application\/problem\+json/;
