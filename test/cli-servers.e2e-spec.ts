import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import request from 'supertest';
import { runCli } from './support/cli';
import { startTestGateway, type TestGateway } from './support/gateway';
import { holdFreeLoopbackPort } from './support/loopback';
import { PUBLIC_URL, token, uniqueName } from './support/registry';
import { insertServer } from './support/servers-table';
import { createScratchDatabase } from './support/services';

/**
 * `mcp-gateway servers …` (the built CLI, in a child process) against a gateway
 * this test runs, on a database of its own so that `export` stays small.
 */
describe('mcp-gateway servers', () => {
  let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
  let gw: TestGateway;
  let dir: string;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    gw = await startTestGateway('services', { DATABASE_URL: scratch.url, UPSTREAM_ALLOWED_HOSTS: 'loopback' });
    dir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-cli-servers-'));
  });

  afterAll(async () => {
    await gw?.close();
    await scratch?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The CLI against the test gateway, found through MCP_GATEWAY_URL. */
  const cli = (...args: string[]) => runCli(['servers', ...args], { MCP_GATEWAY_URL: gw.url });

  function writeJson(value: unknown): string {
    const file = path.join(dir, `${token()}.json`);
    writeFileSync(file, JSON.stringify(value));
    return file;
  }

  it('adds a server with every flag and prints what it registered', async () => {
    const name = uniqueName();
    const slug = `cli-${token()}`;
    const result = await cli(
      'add',
      ...['--name', name, '--server-url', 'http://127.0.0.1:9/mcp', '--slug', slug, '--title', 'CLI'],
      ...['--description', 'Added by the CLI', '--server-version', '1.2.3', '--transport', 'sse'],
      ...['--tag', 'cli', '--tag', 'ops', '--allowed-role', 'admin', '--allowed-role', 'dev'],
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^registered ${name} as ${slug} \\(id [0-9a-f-]{36}\\)\\n$`));
    const stored = await request(gw.url).get(`/api/v1/servers/${slug}`).expect(200);
    expect(stored.body).toMatchObject({
      name,
      title: 'CLI',
      description: 'Added by the CLI',
      version: '1.2.3',
      url: 'http://127.0.0.1:9/mcp',
      transport: 'sse',
      tags: ['cli', 'ops'],
      allowedRoles: ['admin', 'dev'],
    });
  });

  it('prints the server as JSON with --json', async () => {
    const name = uniqueName();
    const result = await cli('add', '--name', name, '--server-url', PUBLIC_URL, '--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ name, url: PUBLIC_URL, revision: 1 });
  });

  it('lists every page, filtered, as a table or as JSON', async () => {
    const tag = `many-${token()}`;
    const documents = Array.from({ length: 105 }, (_, i) => ({
      name: uniqueName(`many-${i}`),
      version: '1.0.0',
      remotes: [{ type: 'streamable-http', url: PUBLIC_URL }],
      _meta: { 'io.mcp-gateway/server': { tags: [tag], status: i === 0 ? 'deprecated' : 'active' } },
    }));
    await request(gw.url).post('/api/v1/servers/import').send(documents).expect(200);

    const json = await cli('list', '--tag', tag, '--json');
    expect(json.code).toBe(0);
    const listed = JSON.parse(json.stdout).servers as { name: string }[];
    expect(listed.map((server) => server.name)).toEqual(documents.map((document) => document.name));

    const human = await cli('list', '--tag', tag, '--status', 'deprecated');
    expect(human.code).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SLUG\s+NAME\s+VERSION\s+STATUS\s+TRANSPORT\s+URL$/);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(documents[0]?.name);
    expect(lines[1]).toMatch(/\sdeprecated\s+streamable-http\s+https:\/\/203\.0\.113\.10\/mcp$/);

    const none = await cli('list', '--q', `nothing-${token()}`);
    expect(none).toMatchObject({ code: 0, stdout: 'no servers\n' });
  });

  it('shows a server by slug or by name, as lines or JSON', async () => {
    const name = uniqueName();
    await cli('add', '--name', name, '--server-url', PUBLIC_URL, '--tag', 'shown');
    const byName = await cli('show', name);
    expect(byName.code).toBe(0);
    expect(byName.stdout).toMatch(new RegExp(`^name\\s+${name}\\n`, 'm'));
    expect(byName.stdout).toMatch(/^url\s+https:\/\/203\.0\.113\.10\/mcp \(streamable-http\)$/m);
    expect(byName.stdout).toMatch(/^tags\s+shown$/m);
    const json = await cli('show', name, '--json');
    const server = JSON.parse(json.stdout);
    const bySlug = await cli('show', server.slug, '--json');
    expect(JSON.parse(bySlug.stdout)).toEqual(server);
  });

  it('removes a server; afterwards show fails with the API problem on stderr, exit 1', async () => {
    const name = uniqueName();
    await cli('add', '--name', name, '--server-url', PUBLIC_URL);
    const removed = await cli('rm', name);
    expect(removed).toMatchObject({ code: 0, stdout: `removed ${name}\n` });
    const shown = await cli('show', name);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toBe('');
    expect(shown.stderr).toBe(`mcp-gateway: no server "${name}" is registered (HTTP 404 not_found)\n`);
    const again = await cli('rm', name, '--json');
    expect(again.code).toBe(1);
  });

  it('imports a file, reporting each document, exit 1 when one failed', async () => {
    const good = { name: uniqueName(), version: '1.0.0', remotes: [{ type: 'sse', url: PUBLIC_URL }] };
    const bad = { name: uniqueName(), version: '1.0.0' };
    const result = await cli('import', writeJson({ servers: [good, bad] }));
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      `created   ${good.name}\n` +
        `failed    ${bad.name}\n    remotes: must hold a remote: the upstream the gateway reaches\n` +
        '1 created, 0 updated, 0 unchanged, 1 failed\n',
    );
    const again = await cli('import', writeJson(good), '--json');
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ unchanged: 1, results: [{ name: good.name }] });
  });

  it('exports what import reads', async () => {
    const name = uniqueName();
    await cli('add', '--name', name, '--server-url', PUBLIC_URL);
    const exported = await cli('export');
    expect(exported.code).toBe(0);
    const documents = JSON.parse(exported.stdout).servers as { name: string }[];
    expect(documents.find((document) => document.name === name)).toMatchObject({
      remotes: [{ type: 'streamable-http', url: PUBLIC_URL }],
    });
  });

  it('exits 1 with the field errors when the API refuses the request', async () => {
    const result = await cli('add', '--name', 'not-a-name', '--server-url', 'http://169.254.169.254/');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^mcp-gateway: the request is not valid \(HTTP 400 validation_error\)\n {2}name: /);
  });

  it('exits 1 when a file cannot be read or is not JSON', async () => {
    const missing = await cli('import', path.join(dir, 'missing.json'));
    expect(missing).toMatchObject({ code: 1, stderr: expect.stringContaining('ENOENT') });
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, '{ not json');
    const broken = await cli('import', file);
    expect(broken).toMatchObject({ code: 1, stderr: `mcp-gateway: ${file} is not JSON\n` });
  });

  it('exits 1 when the gateway cannot be reached, --url over MCP_GATEWAY_URL', async () => {
    const { port, release } = await holdFreeLoopbackPort();
    try {
      const result = await cli('list', '--url', `http://127.0.0.1:${port}`);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(
        `mcp-gateway: cannot reach the gateway at http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
      );
    } finally {
      release();
    }
  });

  it('uses http://localhost:8000 when neither --url nor MCP_GATEWAY_URL is given', async () => {
    const result = await runCli(['servers', 'list']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot reach the gateway at http://localhost:8000');
  });

  it.each([
    [['add', '--server-url', PUBLIC_URL], "required option '--name <name>' not specified"],
    [['add', '--name', 'io.x/y'], "required option '--server-url <url>' not specified"],
    [['add', '--name', 'io.x/y', '--server-url', PUBLIC_URL, '--transport', 'stdio'], 'Allowed choices'],
    [['list', '--url', 'ftp://x'], 'must be an http(s) URL'],
    [['list', '--status', 'gone'], 'Allowed choices'],
    [['show'], "missing required argument 'ref'"],
    [['rm'], "missing required argument 'ref'"],
    [['import'], "missing required argument 'file'"],
    [['launch'], "unknown command 'launch'"],
    [[], 'Usage: mcp-gateway servers'],
  ])('exits 2 on bad usage: %j', async (args, message) => {
    const result = await cli(...args);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('exits 2 when MCP_GATEWAY_URL is not an http(s) URL', async () => {
    const result = await runCli(['servers', 'list'], { MCP_GATEWAY_URL: 'localhost:8000' });
    expect(result).toMatchObject({ code: 2, stderr: expect.stringContaining('must be an http(s) URL') });
  });

  it('refuses a gateway URL holding a user name or password, exit 2, never printing it', async () => {
    // Refused before any connection: no port is tried.
    const withPassword = 'http://admin:TopS3cret@127.0.0.1:9';
    for (const result of [
      await cli('list', '--url', withPassword),
      await cli('show', 'x', '--url', 'http://admin@127.0.0.1:9'),
      await runCli(['servers', 'list'], { MCP_GATEWAY_URL: withPassword }),
    ]) {
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('must be an http(s) URL without a user name or password');
      expect(result.stderr + result.stdout).not.toMatch(/TopS3cret|admin@/);
    }
  });

  it.each([['--url'], ['--api-prefix']])('refuses an empty %s, exit 2', async (flag) => {
    const result = await cli('list', flag, '');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/must be an http\(s\) URL|must start with \//);
  });

  describe('a gateway serving its admin API under another API_PREFIX', () => {
    let admin: TestGateway;

    beforeAll(async () => {
      admin = await startTestGateway('services', { DATABASE_URL: scratch.url, API_PREFIX: '/admin' });
    });

    afterAll(async () => {
      await admin?.close();
    });

    it('is reached with API_PREFIX from the environment, or --api-prefix over it', async () => {
      const name = uniqueName();
      const added = await runCli(['servers', 'add', '--name', name, '--server-url', PUBLIC_URL], {
        MCP_GATEWAY_URL: admin.url,
        API_PREFIX: '/admin',
      });
      expect(added).toMatchObject({ code: 0, stderr: '' });
      await request(admin.url)
        .get(`/admin/servers/${encodeURIComponent(name)}`)
        .expect(200);
      const shown = await runCli(['servers', 'show', name, '--json', '--api-prefix', '/admin'], {
        MCP_GATEWAY_URL: admin.url,
        API_PREFIX: '/api/v1',
      });
      expect(shown.code).toBe(0);
      expect(JSON.parse(shown.stdout)).toMatchObject({ name });
    });

    it('names a bad API_PREFIX, exit 2', async () => {
      const result = await runCli(['servers', 'list'], { MCP_GATEWAY_URL: admin.url, API_PREFIX: 'admin/' });
      expect(result).toMatchObject({
        code: 2,
        stderr: 'mcp-gateway: invalid configuration\n  API_PREFIX: must start with / and not end with /\n',
      });
    });
  });

  it('prints help for every subcommand', async () => {
    for (const sub of ['add', 'list', 'show', 'rm', 'import', 'export']) {
      const result = await cli(sub, '--help');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`Usage: mcp-gateway servers ${sub}`);
    }
  });

  it('names a server the gateway cannot read on stderr when listing, and shows and removes it by its id', async () => {
    const mark = `unreadable-${token()}`;
    const goodName = uniqueName(`${mark}-good`);
    const good = await cli('add', '--name', goodName, '--server-url', PUBLIC_URL, '--json');
    const { id: goodId, slug: goodSlug } = JSON.parse(good.stdout) as { id: string; slug: string };
    const bad = await insertServer(gw.gateway.app, { name: uniqueName(`${mark}-bad`), toolRules: { allow: 'get_*' } });

    const listed = await cli('list', '--q', mark);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain(goodSlug);
    expect(listed.stdout).not.toContain(bad.slug);
    expect(listed.stderr).toMatch(
      new RegExp(`^mcp-gateway: server ${bad.id} \\(${bad.slug}\\) is stored with fields the gateway cannot read`),
    );
    expect(listed.stderr).toContain(`servers rm ${bad.id}`);
    expect(listed.stderr).toMatch(/\n {2}toolRules\.allow: .+\n$/);

    const asJson = await cli('list', '--q', mark, '--json');
    expect(asJson.code).toBe(0);
    expect(JSON.parse(asJson.stdout)).toEqual({
      servers: [expect.objectContaining({ id: goodId })],
      unreadable: [
        {
          id: bad.id,
          name: bad.name,
          slug: bad.slug,
          problems: [{ field: 'toolRules.allow', message: expect.any(String) }],
        },
      ],
    });

    const shown = await cli('show', bad.id);
    expect(shown.code).toBe(1);
    expect(shown.stderr).toContain(`server ${bad.id} (${bad.slug}) is stored with fields the gateway cannot read`);
    expect(shown.stderr).toContain('(HTTP 409 conflict)');
    expect(shown.stderr).toMatch(/\n {2}toolRules\.allow: .+\n$/);

    // A backup that holds less than the registry says so, and exits 1; what it holds imports as any export does.
    const exported = await cli('export');
    expect(exported.code).toBe(1);
    const document = JSON.parse(exported.stdout) as { servers: { name: string }[]; unreadable: { id: string }[] };
    expect(document.servers.map((server) => server.name)).toContain(goodName);
    expect(document.servers.map((server) => server.name)).not.toContain(bad.name);
    expect(document.unreadable).toEqual([expect.objectContaining({ id: bad.id, slug: bad.slug })]);
    expect(exported.stderr).toContain(`server ${bad.id} (${bad.slug}) is stored with fields the gateway cannot read`);
    const file = path.join(dir, `export-${mark}.json`);
    writeFileSync(file, exported.stdout);
    const imported = await cli('import', file);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toContain(`0 created, 0 updated, ${document.servers.length} unchanged, 0 failed`);

    const removed = await cli('rm', bad.id);
    expect(removed.code).toBe(0);
    const after = await cli('list', '--q', mark);
    expect(after.stderr).toBe('');
    expect((await cli('export')).code).toBe(0);
  });
});
