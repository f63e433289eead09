import { Writable } from 'node:stream';
import Redis from 'ioredis';
import { type AccessEntry, accessLogWriter, censorUrl, createLogger } from './logger';

function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as never);
      done();
    },
  });
  return { lines, stream };
}

class TokenError extends Error {
  constructor(readonly token: string) {
    super('the upstream refused the token');
  }
}

describe('createLogger redaction', () => {
  it("censors the arguments of a failed Redis command (AUTH's are the password), and keeps them out of a wrapping error's line", async () => {
    // The local Redis has no such user: AUTH fails with WRONGPASS, and ioredis attaches the command it sent.
    const redis = new Redis('redis://bob:RedisS3cret@127.0.0.1:6379', {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const refused = await new Promise<Error & { command?: unknown }>((resolve) => {
      redis.on('error', (error: Error & { command?: unknown }) => {
        if (error.command !== undefined) resolve(error);
      });
      redis.connect().catch(() => undefined);
    });
    redis.disconnect();
    expect(refused.command).toMatchObject({ name: 'auth', args: ['bob', 'RedisS3cret'] });
    const { lines, stream } = capture();
    const logger = createLogger({ logLevel: 'info' }, stream);
    logger.warn({ err: refused }, 'Redis connection lost');
    logger.error({ err: new Error('could not start', { cause: refused }) }, 'start failed');
    await new Promise((resolve) => setImmediate(resolve));
    const written = JSON.stringify(lines);
    expect(written).not.toContain('RedisS3cret');
    expect(lines[0]).toMatchObject({
      err: { message: expect.stringContaining('WRONGPASS'), command: { name: 'auth' } },
    });
    expect(lines[0]).toMatchObject({ err: { command: { args: '[redacted]' } } });
    expect(lines[1]).toMatchObject({ err: { message: expect.stringContaining('WRONGPASS') } });
  });

  it('censors secret-named fields one level down, in lines and in child bindings, without touching the originals', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ logLevel: 'info' }, stream);
    const upstream = { url: 'https://example.test', token: 'tok-1', clientSecret: 'cs-1', password: 'pw-1' };
    logger.info({ upstream, count: 2, token: 'top-level stays' }, 'first');
    logger
      .child({ session: { access_token: 'at-1', refresh_token: 'rt-1', id: 's1' } })
      .child({ nested: { secret: 'sec-1' } })
      .info('second');
    expect(lines[0]).toMatchObject({
      upstream: {
        url: 'https://example.test',
        token: '[redacted]',
        clientSecret: '[redacted]',
        password: '[redacted]',
      },
      count: 2,
      token: 'top-level stays',
    });
    expect(lines[1]).toMatchObject({
      session: { access_token: '[redacted]', refresh_token: '[redacted]', id: 's1' },
      nested: { secret: '[redacted]' },
    });
    expect(upstream.token).toBe('tok-1');
  });

  it("censors the credential query parameters of a logged `url` (an upstream's), at any level", () => {
    const { lines, stream } = capture();
    const logger = createLogger({ logLevel: 'trace' }, stream);
    logger.debug(
      { url: 'https://mcp.example.test/mcp?api_key=upstream-key-1&region=eu' },
      'ending an upstream session failed',
    );
    logger.child({ url: 'https://mcp.example.test/mcp?apiKey=upstream-key-2' }).trace('bound');
    logger.info({ url: 'https://mcp.example.test/mcp?region=eu' }, 'plain');
    expect(lines.map((line) => line.url)).toEqual([
      'https://mcp.example.test/mcp?api_key=[redacted]&region=eu',
      'https://mcp.example.test/mcp?apiKey=[redacted]',
      'https://mcp.example.test/mcp?region=eu',
    ]);
  });

  it('censors a secret field of a logged error and keeps its message and stack', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ logLevel: 'info' }, stream);
    const error = new TokenError('tok-2');
    logger.warn({ err: error }, 'failed');
    const logged = lines[0]!.err as Record<string, unknown>;
    expect(logged).toMatchObject({
      type: 'TokenError',
      message: 'the upstream refused the token',
      token: '[redacted]',
    });
    expect(String(logged.stack)).toContain('the upstream refused the token');
    expect(JSON.stringify(lines)).not.toContain('tok-2');
    expect(error.token).toBe('tok-2');
  });

  it('still redacts credential headers of logged requests and responses, in lines and in child bindings', () => {
    const { lines, stream } = capture();
    const logger = createLogger({ logLevel: 'info' }, stream);
    const headers = {
      authorization: 'Bearer secret-a',
      'proxy-authorization': 'Basic secret-p',
      cookie: 'c=secret-c',
      accept: '*/*',
    };
    logger.info({ req: { id: 'r1', headers }, res: { statusCode: 200, headers: { 'set-cookie': ['s=secret-s'] } } });
    logger.child({ req: { headers } }).info('bound');
    logger.info({ req: { id: 'r2', method: 'POST', url: '/mcp' }, res: { statusCode: 200 } }, 'no headers');
    const censored = { authorization: '[redacted]', 'proxy-authorization': '[redacted]', cookie: '[redacted]' };
    expect(lines[0]).toMatchObject({
      req: { id: 'r1', headers: { ...censored, accept: '*/*' } },
      res: { statusCode: 200, headers: { 'set-cookie': '[redacted]' } },
    });
    expect(lines[1]).toMatchObject({ req: { headers: { ...censored, accept: '*/*' } }, msg: 'bound' });
    expect(lines[2]).toMatchObject({ req: { id: 'r2', method: 'POST', url: '/mcp' }, res: { statusCode: 200 } });
    expect(JSON.stringify(lines)).not.toMatch(/secret-[apcs]/);
    expect(headers.authorization).toBe('Bearer secret-a');
  });
});

describe('accessLogWriter', () => {
  /** Raw lines written to the destination, with the time (which the two calls take apart) blanked. */
  function rawCapture(): { lines: string[]; stream: Writable } {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString('utf8').split('\n')) {
          if (line) lines.push(line.replace(/"time":"[^"]*"/, '"time":"…"'));
        }
        done();
      },
    });
    return { lines, stream };
  }

  const entries: AccessEntry[] = [
    { id: 'r-1', method: 'POST', url: '/mcp/weather', statusCode: 200, responseTime: 3, completed: true },
    { id: 'r-2', method: 'POST', url: '/mcp', statusCode: 202, responseTime: 0, completed: false },
    { id: 'r.3:x', method: 'POST', url: '/mcp/a/tools/b', statusCode: 404, responseTime: 12, completed: true },
    { id: 'r-4', method: 'POST', url: '/mcp/"quoted"\\\u0001é😀', statusCode: 429, responseTime: 1, completed: true },
    { id: 'r-5', method: 'POST', url: '/mcp', statusCode: 500, responseTime: 30001, completed: false },
  ];

  it("writes, byte for byte, the line pino writes for the same fields at the status's level", async () => {
    for (const logLevel of ['info', 'warn'] as const) {
      const viaPino = rawCapture();
      const direct = rawCapture();
      const pinoLogger = createLogger({ logLevel }, viaPino.stream);
      const write = accessLogWriter(createLogger({ logLevel }, direct.stream));
      for (const entry of entries) {
        const { id, method, url, statusCode, responseTime, completed } = entry;
        const level = statusCode >= 500 ? 'error' : statusCode >= 400 ? 'warn' : 'info';
        pinoLogger[level](
          { req: { id, method, url }, res: { statusCode }, responseTime },
          completed ? 'request completed' : 'request aborted',
        );
        write(entry);
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(direct.lines).toHaveLength(logLevel === 'info' ? entries.length : 3);
      expect(direct.lines).toEqual(viaPino.lines);
    }
  });

  it('censors credentials in the query of the URL it logs', async () => {
    const { lines, stream } = capture();
    const write = accessLogWriter(createLogger({ logLevel: 'info' }, stream));
    write({
      id: 'r-6',
      method: 'POST',
      url: '/mcp?access_token=eyJ.x.y&se=2026-12-01&sig=c2ln&X-Amz-Signature=0f1e',
      statusCode: 401,
      responseTime: 1,
      completed: true,
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines[0]).toMatchObject({
      req: { url: '/mcp?access_token=[redacted]&se=2026-12-01&sig=[redacted]&X-Amz-Signature=[redacted]' },
    });
  });
});

describe('censorUrl', () => {
  it('censors the values of credential query parameters however their names are written', () => {
    expect(censorUrl('/mcp/up/tools?access_token=eyJ.a.b')).toBe('/mcp/up/tools?access_token=[redacted]');
    expect(
      censorUrl(
        '/cb?state=s1&code=c1&id_token=i1&refresh_token=r1&client_secret=cs&client_assertion=ca&token=t&password=p&api_key=k',
      ),
    ).toBe(
      '/cb?state=s1&code=[redacted]&id_token=[redacted]&refresh_token=[redacted]&client_secret=[redacted]' +
        '&client_assertion=[redacted]&token=[redacted]&password=[redacted]&api_key=[redacted]',
    );
    for (const name of [
      'ACCESS_TOKEN',
      'Access_Token',
      'access%5Ftoken',
      'acc%65ss_token',
      'access_token[]',
      'access_token[0]',
    ]) {
      expect(censorUrl(`/api/v1/servers?limit=5&${name}=secret-value&q=x`)).toBe(
        `/api/v1/servers?limit=5&${name}=[redacted]&q=x`,
      );
    }
    // Twice, empty, without a value, after a malformed escape.
    expect(censorUrl('/x?access_token=a&access_token=b')).toBe('/x?access_token=[redacted]&access_token=[redacted]');
    expect(censorUrl('/x?access_token=&access_token')).toBe('/x?access_token=[redacted]&access_token=[redacted]');
    expect(censorUrl('/x?%E0%A4%A=1&code=c')).toBe('/x?%E0%A4%A=1&code=[redacted]');
  });

  it('censors the signatures and credentials of signed URLs (Azure SAS, AWS, Google, CloudFront), not their other parameters', () => {
    expect(
      censorUrl(
        '/blob/a.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-01T00:00:00Z&st=2026-11-24&spr=https&sig=c2ln%2B',
      ),
    ).toBe('/blob/a.txt?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-01T00:00:00Z&st=2026-11-24&spr=https&sig=[redacted]');
    expect(
      censorUrl(
        '/o.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20261124%2Fus-east-1%2Fs3%2Faws4_request' +
          '&X-Amz-Date=20261124T021500Z&X-Amz-Expires=900&X-Amz-Security-Token=IQoJb3JpZ2lu&X-Amz-SignedHeaders=host' +
          '&X-Amz-Signature=0f1e2d3c',
      ),
    ).toBe(
      '/o.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[redacted]&X-Amz-Date=20261124T021500Z' +
        '&X-Amz-Expires=900&X-Amz-Security-Token=[redacted]&X-Amz-SignedHeaders=host&X-Amz-Signature=[redacted]',
    );
    expect(
      censorUrl('/o.txt?AWSAccessKeyId=AKIAEXAMPLE&Expires=1795000000&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D'),
    ).toBe('/o.txt?AWSAccessKeyId=[redacted]&Expires=1795000000&Signature=[redacted]');
    expect(
      censorUrl(
        '/b/o?x-goog-algorithm=GOOG4-RSA-SHA256&x-goog-credential=sa%40p.iam.gserviceaccount.com%2F20261124%2Fauto' +
          '&x-goog-date=20261124T021500Z&x-goog-expires=900&x-goog-signedheaders=host&x-goog-signature=8a7b6c',
      ),
    ).toBe(
      '/b/o?x-goog-algorithm=GOOG4-RSA-SHA256&x-goog-credential=[redacted]&x-goog-date=20261124T021500Z' +
        '&x-goog-expires=900&x-goog-signedheaders=host&x-goog-signature=[redacted]',
    );
    expect(censorUrl('/b/o?GoogleAccessId=sa%40p.iam&Expires=1795000000&Signature=a%2Bb')).toBe(
      '/b/o?GoogleAccessId=[redacted]&Expires=1795000000&Signature=[redacted]',
    );
    expect(
      censorUrl('/v.mp4?Expires=1795000000&Signature=nitfHRCrtziwO2HwPfWw~yYDhUF5&Key-Pair-Id=K2JCJMDEHXQW5F'),
    ).toBe('/v.mp4?Expires=1795000000&Signature=[redacted]&Key-Pair-Id=K2JCJMDEHXQW5F');
    expect(censorUrl('/x?SIG=a&x-amz-SIGNATURE=b')).toBe('/x?SIG=[redacted]&x-amz-SIGNATURE=[redacted]');
  });

  it('censors them after a # too: Node passes a raw request target through whole, its fragment with it', () => {
    // Read as one query, the token was the value of x.
    expect(censorUrl('/mcp?x=1#access_token=eyJ.a.b')).toBe('/mcp?x=1#access_token=[redacted]');
    expect(censorUrl('/mcp#access_token=t1&state=s')).toBe('/mcp#access_token=[redacted]&state=s');
    expect(censorUrl('/mcp?code=c#/callback?id_token=i#token=t')).toBe(
      '/mcp?code=[redacted]#/callback?id_token=[redacted]#token=[redacted]',
    );
    // A ? after the # belongs to the fragment.
    expect(censorUrl('/mcp#x?Access_Token=t')).toBe('/mcp#x?Access_Token=[redacted]');
  });

  it("censors a path's parameters (;name=value) and a query's parted by ;, as some servers read them", () => {
    expect(censorUrl('https://files.example/v1;token=t1/docs;api_key=k1;v=2/a.txt')).toBe(
      'https://files.example/v1;token=[redacted]/docs;api_key=[redacted];v=2/a.txt',
    );
    expect(censorUrl('/x?a=1;access_token=t2&b=2')).toBe('/x?a=1;access_token=[redacted]&b=2');
    expect(censorUrl('/x;code=c?q=1#id_token=i')).toBe('/x;code=[redacted]?q=1#id_token=[redacted]');
  });

  it('leaves other URLs as they are, the same string', () => {
    for (const url of [
      '/mcp',
      '/mcp/up?cursor=abc&limit=5',
      '/x?',
      '/x?tokens=1&codes=2&my_access_token=3',
      '/x?signed=1&sigma=2&x-amz-date=3&se=4&sp=r&sv=5&Key-Pair-Id=K',
      '/x?q=access_token',
      '/x#section-2',
      '/x?a=1#access_token_hint=2',
      '/files;v=2/a;b/c?d=1;e=2',
    ]) {
      expect(censorUrl(url)).toBe(url);
    }
  });
});
