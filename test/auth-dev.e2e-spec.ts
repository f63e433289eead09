import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { decodeJwt } from 'jose';
import request from 'supertest';
import { runCli, ServeProcess } from './support/cli';
import { POSTGRES_URL, REDIS_URL } from './support/services';

const DEV_SCOPE = 'api://mcp-gateway-dev/access_as_user';

/** `AUTH_MODE=dev` through the built CLI (`npm run build` first), as a newcomer would use it. */
describe('dev mode and mcp-gateway token', () => {
  let dataDir: string;
  let serve: ServeProcess;
  let url: string;
  const env = () => ({
    AUTH_MODE: 'dev',
    DATA_DIR: dataDir,
    DATABASE_URL: POSTGRES_URL,
    REDIS_URL,
    AUTH_CLOCK_TOLERANCE_MS: '0',
  });

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-dev-'));
    serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], env());
    url = await serve.ready();
  });

  afterAll(async () => {
    serve?.signal('SIGTERM');
    await serve?.exited;
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function token(args: string[], extra: Record<string, string> = {}): Promise<string> {
    const result = await runCli(['token', ...args], { ...env(), ...extra });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    return result.stdout.trim();
  }

  it('says loudly at start that it is in dev mode, and made its signing key in DATA_DIR', () => {
    const warning = serve.logLines().find((line) => String(line.msg).includes('AUTH_MODE=dev'));
    expect(warning).toMatchObject({ level: 40 });
    expect(String(warning?.msg)).toContain('NEVER RUN THIS IN PRODUCTION');
    expect(statSync(path.join(dataDir, 'dev-signing-key.json')).mode & 0o777).toBe(0o600);
  });

  it('prints a token the gateway accepts, with the roles and scopes asked for', async () => {
    const admin = await token(['--roles', 'Gateway.Admin', '--ttl', '1h']);
    expect(decodeJwt(admin)).toMatchObject({
      iss: 'urn:mcp-gateway:dev',
      aud: 'api://mcp-gateway-dev',
      roles: ['Gateway.Admin'],
      scp: 'access_as_user',
      name: 'developer',
    });
    const claims = decodeJwt(admin);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(3600);
    // It passes the guard: nothing serves this path yet, so 404.
    await request(url).post('/mcp/anything').set('authorization', `Bearer ${admin}`).expect(404);
    const refused = await request(url).post('/mcp/anything').expect(401);
    expect(refused.headers['www-authenticate']).toContain(`scope="${DEV_SCOPE}"`);
  });

  it('gives the same developer the same oid, and app-only tokens on request', async () => {
    const first = decodeJwt(await token(['--name', 'grace']));
    const second = decodeJwt(await token(['--name', 'grace', '--roles', 'Gateway.User']));
    expect(first.oid).toBe(second.oid);
    const app = await token(['--app-only', '--roles', 'Gateway.Reader']);
    expect(decodeJwt(app)).toMatchObject({ idtyp: 'app', roles: ['Gateway.Reader'] });
    expect(decodeJwt(app).scp).toBeUndefined();
    await request(url).post('/mcp/anything').set('authorization', `Bearer ${app}`).expect(404);
  });

  it('refuses a token without the required scope (403), an expired one and one from another key (401)', async () => {
    const unscoped = await token(['--scopes', 'Something.Else']);
    const scope = await request(url).post('/mcp').set('authorization', `Bearer ${unscoped}`).expect(403);
    expect(scope.headers['www-authenticate']).toContain('error="insufficient_scope"');

    const shortLived = await token(['--ttl', '1s']);
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const expired = await request(url).post('/mcp').set('authorization', `Bearer ${shortLived}`).expect(401);
    expect(expired.headers['www-authenticate']).toContain('error_description="the token has expired"');

    const elsewhere = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-dev-other-'));
    try {
      const foreign = await token([], { DATA_DIR: elsewhere });
      const res = await request(url).post('/mcp').set('authorization', `Bearer ${foreign}`).expect(401);
      expect(res.headers['www-authenticate']).toContain('the token signing key is not known');
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it('publishes metadata without an authorization server: none issues its tokens, whose issuer is no URL', async () => {
    for (const path of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-protected-resource']) {
      const res = await request(url).get(path).expect(200);
      expect(res.body.authorization_servers).toBeUndefined();
      expect(res.body.scopes_supported).toEqual([DEV_SCOPE]);
    }
    // What the metadata could name: the tokens' issuer, a URN (not an https issuer identifier, RFC 8414 §2), and
    // the gateway serves no authorization server metadata of its own.
    expect(decodeJwt(await token([])).iss).toBe('urn:mcp-gateway:dev');
    await request(url).get('/.well-known/oauth-authorization-server').expect(404);
  });

  it('rejects bad flags with exit 2 and documents itself', async () => {
    const ttl = await runCli(['token', '--ttl', 'forever'], env());
    expect(ttl.code).toBe(2);
    expect(ttl.stderr).toContain('must be a duration from 1s to 30d');
    const help = await runCli(['token', '--help'], env());
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--roles <roles>');
  });

  it('refuses to print a token outside dev mode', async () => {
    const result = await runCli(['token', '--roles', 'Gateway.Admin'], { ...env(), AUTH_MODE: 'entra' });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'mcp-gateway: token works with AUTH_MODE=dev only; with AUTH_MODE=entra, tokens come from Entra ID\n',
    );
  });
});

describe('dev mode under NODE_ENV=production', () => {
  it.each([[['serve', '--port', '0']], [['token', '--roles', 'Gateway.Admin']]])(
    'refuses %j with exit 2, naming the rule',
    async (args) => {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-prod-'));
      try {
        const result = await runCli(args, { AUTH_MODE: 'dev', NODE_ENV: 'production', DATA_DIR: dataDir });
        expect(result.code).toBe(2);
        expect(result.stdout).toBe('');
        expect(result.stderr).toBe(
          'mcp-gateway: invalid configuration\n  AUTH_MODE: dev is refused when NODE_ENV is production\n',
        );
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );
});

describe('AUTH_MODE=entra without a tenant or client, at start', () => {
  it('warns that MCP_PREFIX answers 503', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-noentra-'));
    const serve = new ServeProcess(['--port', '0', '--host', '127.0.0.1'], {
      DATA_DIR: dataDir,
      DATABASE_URL: POSTGRES_URL,
      REDIS_URL,
    });
    try {
      const url = await serve.ready();
      const warning = serve.logLines().find((line) => String(line.msg).includes('answers 503 to every request'));
      expect(warning).toMatchObject({ level: 40 });
      await request(url).post('/mcp').expect(503);
    } finally {
      serve.signal('SIGTERM');
      expect(await serve.exited).toBe(0);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
