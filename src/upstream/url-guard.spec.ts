import { embeddedIpv4, UrlGuard } from './url-guard';

const resolveTo =
  (table: Record<string, string[]>) =>
  (hostname: string): Promise<string[]> => {
    const addresses = table[hostname];
    return addresses ? Promise.resolve(addresses) : Promise.reject(new Error('ENOTFOUND'));
  };

const dns = resolveTo({
  'mcp.internal.example': ['10.1.2.3'],
  'rebind.example': ['93.184.216.34', '169.254.169.254'],
  localhost: ['127.0.0.1', '::1'],
  'mapped.example': ['::ffff:127.0.0.1'],
  'nat64.example': ['64:ff9b::a9fe:a9fe'],
});

describe('UrlGuard', () => {
  const guard = new UrlGuard({ allowedHosts: [], deniedHosts: [] }, dns);

  it.each([
    'https://mcp.example.com/mcp',
    'http://10.0.0.5:8080/mcp',
    'https://mcp.internal.example/mcp',
    'https://unresolvable.example/mcp',
    'http://[2001:db8::1]/mcp',
    'http://[64:ff9b::93.184.216.34]/mcp',
    'http://[64:ff9b:1::a9fe:a9fe]/mcp',
  ])('allows %s', async (url) => {
    await expect(guard.check(url)).resolves.toEqual({ allowed: true });
  });

  it.each([
    ['ftp://mcp.example.com/', /must use http or https/],
    ['file:///etc/passwd', /must use http or https/],
    ['javascript:alert(1)', /must use http or https/],
    ['not a url', /is not a valid URL/],
    ['http://user:secret@mcp.example.com/', /must not carry credentials/],
    ['http://127.0.0.1:8080/', /127\.0\.0\.1 is loopback/],
    ['http://127.1.2.3/', /loopback/],
    ['http://[::1]/', /::1 is loopback/],
    ['http://localhost:3000/', /localhost is loopback/],
    ['http://169.254.169.254/latest/meta-data/', /link-local/],
    ['http://[fd00:ec2::254]/', /cloud metadata/],
    ['http://metadata.google.internal/', /cloud metadata/],
    ['http://0.0.0.0:8000/', /unspecified/],
    ['http://[::]/', /unspecified/],
    ['http://[fe80::1]/', /link-local/],
    ['http://[::ffff:169.254.169.254]/', /link-local/],
    ['http://rebind.example/', /169\.254\.169\.254 is link-local/],
    ['http://mapped.example/', /127\.0\.0\.1 is loopback/],
    ['http://2130706433/', /loopback/],
    ['http://0x7f.1/', /loopback/],
    ['http://[64:ff9b::169.254.169.254]/', /address 169\.254\.169\.254 is link-local/],
    ['http://[::169.254.169.254]/', /address 169\.254\.169\.254 is link-local/],
    ['http://[::ffff:0:127.0.0.1]/', /address 127\.0\.0\.1 is loopback/],
    ['http://[::ffff:127.0.0.1]/', /address 127\.0\.0\.1 is loopback/],
    ['http://nat64.example/', /address 169\.254\.169\.254 is link-local/],
  ])('refuses %s', async (url, reason) => {
    const verdict = await guard.check(url);
    expect(verdict.allowed).toBe(false);
    if (!verdict.allowed) expect(verdict.reason).toMatch(reason);
  });

  it('allows loopback only when configured', async () => {
    const allowing = new UrlGuard({ allowedHosts: ['loopback'], deniedHosts: [] }, dns);
    await expect(allowing.check('http://127.0.0.1:9000/mcp')).resolves.toEqual({ allowed: true });
    await expect(allowing.check('http://localhost:9000/mcp')).resolves.toEqual({ allowed: true });
    await expect(allowing.check('http://[::1]:9000/mcp')).resolves.toEqual({ allowed: true });
    // Allowing loopback does not open the metadata service.
    expect((await allowing.check('http://169.254.169.254/')).allowed).toBe(false);
  });

  it('honours allowed CIDRs and denied hosts, denial first', async () => {
    const custom = new UrlGuard(
      { allowedHosts: ['169.254.10.0/24'], deniedHosts: ['10.0.0.0/8', 'evil.example', '169.254.10.7'] },
      dns,
    );
    await expect(custom.check('http://169.254.10.9/')).resolves.toEqual({ allowed: true });
    expect(await custom.check('http://169.254.10.7/')).toEqual({
      allowed: false,
      reason: 'address 169.254.10.7 is denied by configuration',
    });
    expect((await custom.check('http://mcp.internal.example/')).allowed).toBe(false);
    expect((await custom.check('https://EVIL.example/x')).allowed).toBe(false);
  });

  it('judges an IPv6 address that carries an IPv4 one as that IPv4 address, in the configured lists too', async () => {
    const custom = new UrlGuard({ allowedHosts: ['127.0.0.1'], deniedHosts: ['10.0.0.0/8'] }, dns);
    await expect(custom.check('http://[64:ff9b::127.0.0.1]/')).resolves.toEqual({ allowed: true });
    expect(await custom.check('http://[::ffff:0:10.1.2.3]/')).toEqual({
      allowed: false,
      reason: 'address 10.1.2.3 is denied by configuration',
    });
  });

  describe("this gateway's own MCP endpoint", () => {
    const own = new UrlGuard(
      { allowedHosts: ['loopback'], deniedHosts: [], gatewayMcpUrl: 'https://gateway.example/base/mcp' },
      dns,
    );

    it.each([
      'https://gateway.example/base/mcp',
      'https://gateway.example/base/mcp/',
      'https://gateway.example/base/mcp/github',
      'https://gateway.example/base/mcp/github/tools/search?q=1#top',
      'HTTPS://GATEWAY.EXAMPLE:443/base/mcp/github',
      'https://gateway.example/base/other/../mcp/github',
      'https://gateway.example/base/./mcp',
    ])('refuses %s', async (url) => {
      expect(await own.check(url)).toEqual({
        allowed: false,
        reason: "is this gateway's own MCP endpoint (PUBLIC_URL and MCP_PREFIX): it would relay to itself",
      });
    });

    it.each([
      'https://gateway.example/base/mcpish/github',
      'https://gateway.example/base/api/v1/servers',
      'https://gateway.example/mcp/github',
      'https://gateway.example/base/MCP/github',
      'http://gateway.example/base/mcp/github',
      'https://gateway.example:8443/base/mcp/github',
      'https://other.example/base/mcp/github',
    ])('leaves %s to the other rules', async (url) => {
      await expect(own.check(url)).resolves.toEqual({ allowed: true });
    });
  });

  it('resolves for a connection with the checked answer, and refuses one that answers a refused address', async () => {
    const answers = [['93.184.216.34'], ['169.254.169.254']];
    const rebinding = new UrlGuard({ allowedHosts: [], deniedHosts: [] }, () => Promise.resolve(answers.shift() ?? []));
    await expect(rebinding.resolveForConnection('rebind.example')).resolves.toEqual(['93.184.216.34']);
    await expect(rebinding.resolveForConnection('rebind.example')).rejects.toMatchObject({
      kind: 'refused_url',
      message:
        'the upstream address 169.254.169.254 is link-local (cloud metadata lives here); allow it with UPSTREAM_ALLOWED_HOSTS',
    });
    await expect(guard.resolveForConnection('metadata.google.internal')).rejects.toMatchObject({ kind: 'refused_url' });
    await expect(guard.resolveForConnection('unresolvable.example')).rejects.toThrow('ENOTFOUND');
  });
});

describe('embeddedIpv4', () => {
  it.each([
    ['::ffff:7f00:1', '127.0.0.1'],
    ['::ffff:0:7f00:1', '127.0.0.1'],
    ['::a9fe:a9fe', '169.254.169.254'],
    ['64:ff9b::a9fe:a9fe', '169.254.169.254'],
    ['64:ff9b:0:0:0:0:169.254.169.254', '169.254.169.254'],
    ['::', undefined],
    ['::1', undefined],
    ['2001:db8::a9fe:a9fe', undefined],
    ['127.0.0.1', undefined],
  ])('%s carries %s', (address, ipv4) => {
    expect(embeddedIpv4(address)).toBe(ipv4);
  });
});
