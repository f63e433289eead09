import request from 'supertest';
import { startTestGateway, type TestGateway } from './support/gateway';
import { PROBLEM_JSON, PUBLIC_URL, serverBody, storedRows, token, uniqueName } from './support/registry';

const SERVERS = '/api/v1/servers';

type Body = Record<string, unknown>;

/** Text PostgreSQL cannot store (NUL; an unpaired surrogate in jsonb), and controls no field has a use for. */
const HOSTILE_TEXT: [string, string][] = [
  ['a NUL', 'a\u0000b'],
  ['an unpaired surrogate', 'a\ud800b'],
  ['a bell', 'a\u0007b'],
  ['a C1 control', 'a\u0085b'],
];

/** Where a registration holds free text: [the field the error names, a body with the text there]. */
const TEXT_FIELDS: [string, (name: string, text: string) => Body][] = [
  ['title', (name, text) => ({ name, url: PUBLIC_URL, title: text })],
  ['description', (name, text) => ({ name, url: PUBLIC_URL, description: text })],
  ['statusMessage', (name, text) => ({ name, url: PUBLIC_URL, status: 'deprecated', statusMessage: text })],
  ['url', (name, text) => ({ name, url: `${PUBLIC_URL}/${text}` })],
  ['auth.scope', (name, text) => ({ name, url: PUBLIC_URL, auth: { type: 'entra-obo', scope: `api://${text}` } })],
  ['toolRules.allow.0', (name, text) => ({ name, url: PUBLIC_URL, toolRules: { allow: [`read_${text}`] } })],
  ['toolRules.deny.0', (name, text) => ({ name, url: PUBLIC_URL, toolRules: { deny: [`${text}*`] } })],
];

function textFieldBodies(): [string, (name: string) => Body, string][] {
  return TEXT_FIELDS.flatMap(([field, bodyOf]) =>
    HOSTILE_TEXT.map(([what, text]): [string, (name: string) => Body, string] => [
      `${what} in ${field}`,
      (name) => bodyOf(name, text),
      field,
    ]),
  );
}

/** Bad input on every registry route: a 4xx problem+json each time, and nothing stored. */
describe('registry input validation', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway('services', { UPSTREAM_ALLOWED_HOSTS: 'loopback' });
  });

  afterAll(async () => {
    await gw?.close();
  });

  const api = () => request(gw.url);

  function expectProblem(res: request.Response, status: number, field?: string): void {
    expect(res.status).toBe(status);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.body).toMatchObject({ status, code: status === 413 ? 'validation_error' : expect.any(String) });
    if (field !== undefined) {
      expect(res.body.errors?.map((error: { field: string }) => error.field)).toContain(field);
    }
  }

  /** [what, body given a fresh name, the field the error names] */
  const badBodies: [string, (name: string) => Body, string][] = [
    ['a missing name', () => ({ url: PUBLIC_URL }), 'name'],
    ['a missing url', (name) => ({ name }), 'url'],
    ['a name of the wrong type', () => ({ name: 42, url: PUBLIC_URL }), 'name'],
    ['a name without a namespace', () => ({ name: `weather-${token()}`, url: PUBLIC_URL }), 'name'],
    ['a dot-segment name', () => ({ name: '../..', url: PUBLIC_URL }), 'name'],
    ['a name over 200 characters', () => ({ name: `io.x/${'a'.repeat(200)}`, url: PUBLIC_URL }), 'name'],
    ['a title over 100 characters', (name) => ({ name, url: PUBLIC_URL, title: 't'.repeat(101) }), 'title'],
    ['a description over 100', (name) => ({ name, url: PUBLIC_URL, description: 'd'.repeat(101) }), 'description'],
    ['an empty title', (name) => ({ name, url: PUBLIC_URL, title: '' }), 'title'],
    [
      'a status message over 500',
      (name) => ({ name, url: PUBLIC_URL, statusMessage: 's'.repeat(501) }),
      'statusMessage',
    ],
    ['a url over 2048 characters', (name) => ({ name, url: `https://203.0.113.10/${'u'.repeat(2048)}` }), 'url'],
    ['a url of the wrong type', (name) => ({ name, url: ['https://203.0.113.10/'] }), 'url'],
    ['a version over 255', (name) => ({ name, url: PUBLIC_URL, version: `1.${'0'.repeat(255)}` }), 'version'],
    ['a version range', (name) => ({ name, url: PUBLIC_URL, version: '^1.2.3' }), 'version'],
    ['the version "latest"', (name) => ({ name, url: PUBLIC_URL, version: 'latest' }), 'version'],
    ['an unknown field', (name) => ({ name, url: PUBLIC_URL, owner: 'me' }), 'owner'],
    ['an id (not writable)', (name) => ({ name, url: PUBLIC_URL, id: '00000000-0000-4000-8000-000000000000' }), 'id'],
    ['tags that are not an array', (name) => ({ name, url: PUBLIC_URL, tags: 'a' }), 'tags'],
    ['21 tags', (name) => ({ name, url: PUBLIC_URL, tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }), 'tags'],
    ['a tag with a space', (name) => ({ name, url: PUBLIC_URL, tags: ['Bad Tag'] }), 'tags.0'],
    ['a tag over 50', (name) => ({ name, url: PUBLIC_URL, tags: ['t'.repeat(51)] }), 'tags.0'],
    ['a role with a space', (name) => ({ name, url: PUBLIC_URL, allowedRoles: ['a role'] }), 'allowedRoles.0'],
    ['the stdio transport', (name) => ({ name, url: PUBLIC_URL, transport: 'stdio' }), 'transport'],
    ['an unknown status', (name) => ({ name, url: PUBLIC_URL, status: 'deleted' }), 'status'],
    ['a reserved slug', (name) => ({ name, url: PUBLIC_URL, slug: 'export' }), 'slug'],
    ['an uppercase slug', (name) => ({ name, url: PUBLIC_URL, slug: 'Weather' }), 'slug'],
    ['a slug over 32', (name) => ({ name, url: PUBLIC_URL, slug: 's'.repeat(33) }), 'slug'],
    ['an unknown auth type', (name) => ({ name, url: PUBLIC_URL, auth: { type: 'basic' } }), 'auth.type'],
    [
      'a header the gateway sets itself',
      (name) => ({ name, url: PUBLIC_URL, auth: { type: 'headers', headers: { Authorization: { env: 'TOKEN' } } } }),
      'auth.headers.Authorization',
    ],
    [
      'a Via header, which carries the chain of gateways the gateway appends to',
      (name) => ({ name, url: PUBLIC_URL, auth: { type: 'headers', headers: { vIA: { env: 'HOPS' } } } }),
      'auth.headers.vIA',
    ],
    [
      'a header secret given as a value',
      (name) => ({ name, url: PUBLIC_URL, auth: { type: 'headers', headers: { 'X-Key': { value: 'hunter2' } } } }),
      'auth.headers.X-Key.env',
    ],
    [
      'a header secret from a bad variable name',
      (name) => ({ name, url: PUBLIC_URL, auth: { type: 'headers', headers: { 'X-Key': { env: '1-BAD' } } } }),
      'auth.headers.X-Key.env',
    ],
    [
      'a header named __proto__',
      (name) => ({
        name,
        url: PUBLIC_URL,
        auth: { type: 'headers', headers: JSON.parse('{"X-Key":{"env":"K"},"__proto__":{"env":"SECRET"}}') },
      }),
      'auth.headers.__proto__',
    ],
    ['no headers', (name) => ({ name, url: PUBLIC_URL, auth: { type: 'headers', headers: {} } }), 'auth.headers'],
    ['an Entra auth without scope', (name) => ({ name, url: PUBLIC_URL, auth: { type: 'entra-obo' } }), 'auth.scope'],
    ['a negative timeout', (name) => ({ name, url: PUBLIC_URL, timeouts: { connectMs: -1 } }), 'timeouts.connectMs'],
    ['an unknown timeout', (name) => ({ name, url: PUBLIC_URL, timeouts: { idleMs: 5 } }), 'timeouts.idleMs'],
    ['the metadata address', (name) => ({ name, url: 'http://169.254.169.254/latest/meta-data' }), 'url'],
    ['a metadata host name', (name) => ({ name, url: 'http://metadata.google.internal/' }), 'url'],
    ['the unspecified address', (name) => ({ name, url: 'http://0.0.0.0:8000/mcp' }), 'url'],
    ['a file URL', (name) => ({ name, url: 'file:///etc/passwd' }), 'url'],
    ['a gopher URL', (name) => ({ name, url: 'gopher://203.0.113.10/' }), 'url'],
    ['credentials in the URL', (name) => ({ name, url: 'http://user:pw@203.0.113.10/mcp' }), 'url'],
    ['text that is not a URL', (name) => ({ name, url: 'not a url' }), 'url'],
    ...textFieldBodies(),
  ];

  it.each(badBodies)('refuses to register a server with %s, storing nothing', async (_what, bodyOf, field) => {
    const name = uniqueName();
    const body = bodyOf(name);
    const res = await api().post(SERVERS).send(body);
    expectProblem(res, 400, field);
    expect(res.text).not.toContain('hunter2');
    const stored = typeof body.name === 'string' ? body.name : name;
    expect(await storedRows(stored)).toEqual({ servers: 0, versions: 0 });
  });

  /** [what, content type, raw body, status] */
  const badRaw: [string, string, string, number][] = [
    ['JSON that does not parse', 'application/json', '{"name": "io.x/y",', 400],
    ['an array', 'application/json', '[]', 400],
    ['a string', 'application/json', '"io.x/y"', 400],
    ['null', 'application/json', 'null', 400],
    ['an empty body', 'application/json', '', 400],
    ['text', 'text/plain', 'name=io.x/y', 415],
    ['a form', 'application/x-www-form-urlencoded', 'name=io.x%2Fy&url=https%3A%2F%2F203.0.113.10', 415],
  ];

  it.each([
    ['title', 'two\nlines'],
    ['title', 'a\ttab'],
    ['url', `${PUBLIC_URL}\n`],
    ['toolRules.allow.0', 'read\r\n'],
  ])('refuses a line break or tab in the one-line field %s', async (field, text) => {
    const entry = TEXT_FIELDS.find(([name]) => name === field);
    const body = entry![1](uniqueName(), text);
    expectProblem(await api().post(SERVERS).send(body), 400, field);
    expect(await storedRows(body.name as string)).toEqual({ servers: 0, versions: 0 });
  });

  it('keeps tabs and line breaks in a description and a status message', async () => {
    const text = 'line one\r\nline two\n\tindented';
    const res = await api()
      .post(SERVERS)
      .send(serverBody({ description: text, status: 'deprecated', statusMessage: text }))
      .expect(201);
    expect(res.body).toMatchObject({ description: text, statusMessage: text });
  });

  it.each(badRaw)('refuses %s as a registration', async (_what, type, raw, status) => {
    const res = await api().post(SERVERS).set('Content-Type', type).send(raw);
    expectProblem(res, status);
  });

  it('refuses a body over 1 MB with 413', async () => {
    const name = uniqueName();
    const res = await api()
      .post(SERVERS)
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ name, url: PUBLIC_URL, title: 'x'.repeat(1_100_000) }));
    expectProblem(res, 413);
    expect(await storedRows(name)).toEqual({ servers: 0, versions: 0 });
  });

  describe('writes to an existing server', () => {
    let server: Body & { id: string; name: string; slug: string };

    beforeAll(async () => {
      const res = await api()
        .post(SERVERS)
        .send(serverBody({ title: 'Untouched', version: '1.0.0' }))
        .expect(201);
      server = res.body;
    });

    afterEach(async () => {
      const res = await api().get(`${SERVERS}/${server.id}`).expect(200);
      expect(res.body).toEqual(server);
      expect(await storedRows(server.name)).toEqual({ servers: 1, versions: 1 });
    });

    const badPatches: [string, Body | string, string | undefined][] = [
      ['an unknown field', { owner: 'me' }, 'owner'],
      ['a title of the wrong type', { title: 5 }, 'title'],
      ['a title over 100', { title: 't'.repeat(101) }, 'title'],
      ['a null slug', { slug: null }, 'slug'],
      ['null tags', { tags: null }, 'tags'],
      ['a null url', { url: null }, 'url'],
      ['the version "latest"', { version: 'latest' }, 'version'],
      ['a name of the wrong type', { name: 5 }, 'name'],
      ['an unknown status', { status: 'deleted' }, 'status'],
      ['a read-only field', { revision: 9 }, 'revision'],
      ['the metadata address', { url: 'http://169.254.169.254/' }, 'url'],
      ['credentials in the URL', { url: 'https://a:b@203.0.113.10/' }, 'url'],
      ['an array', '[{"title":"x"}]', undefined],
      ['JSON that does not parse', '{"title":', undefined],
      ['a NUL in the title', { title: 'a\u0000b' }, 'title'],
      ['a NUL in the description', { description: 'a\u0000b' }, 'description'],
      ['a NUL in the status message', { statusMessage: '\u0000' }, 'statusMessage'],
      ['a NUL in the url', { url: `${PUBLIC_URL}\u0000` }, 'url'],
      ['a NUL in the scope', { auth: { type: 'entra-obo', scope: 'api://x\u0000' } }, 'auth.scope'],
      ['a NUL in a tool rule', { toolRules: { deny: ['ok', 'a\u0000'] } }, 'toolRules.deny.1'],
      ['an unpaired surrogate in a tool rule', { toolRules: { allow: ['\udc00'] } }, 'toolRules.allow.0'],
    ];

    it.each(badPatches)('refuses a PATCH with %s and changes nothing', async (_what, body, field) => {
      const req = api().patch(`${SERVERS}/${server.id}`).set('Content-Type', 'application/json');
      const res = await req.send(typeof body === 'string' ? body : JSON.stringify(body));
      expectProblem(res, 400, field);
    });

    const badPuts: [string, (current: typeof server) => Body, string][] = [
      ['no url', (current) => ({ name: current.name }), 'url'],
      ['no name', () => ({ url: PUBLIC_URL }), 'name'],
      ['read-only fields', (current) => ({ ...current }), 'revision'],
      ['a file URL', (current) => ({ name: current.name, url: 'file:///etc/passwd' }), 'url'],
      [
        'a description over 100',
        (current) => ({ name: current.name, url: PUBLIC_URL, description: 'd'.repeat(101) }),
        'description',
      ],
      ['a NUL in the title', (current) => ({ name: current.name, url: PUBLIC_URL, title: 'x\u0000' }), 'title'],
    ];

    it.each(badPuts)('refuses a PUT with %s and changes nothing', async (_what, bodyOf, field) => {
      const res = await api().put(`${SERVERS}/${server.id}`).send(bodyOf(server));
      expectProblem(res, 400, field);
    });
  });

  const hostileRefs = [
    '..%2F..',
    '%00',
    'a%00b',
    '%2F',
    '%252F',
    '..',
    'io.x%2Fy%2Fz',
    'NoSuchServer',
    'x'.repeat(300),
    '%E0%A4%A',
    '%F0%28%8C%BC',
    'io.test%2F%3Cscript%3E',
  ];

  it.each(hostileRefs)('answers 4xx problem+json for the ref %s on every route', async (ref) => {
    const name = uniqueName();
    const responses = [
      await api().get(`${SERVERS}/${ref}`),
      await api().patch(`${SERVERS}/${ref}`).send({ title: 'x' }),
      await api().put(`${SERVERS}/${ref}`).send({ name, url: PUBLIC_URL }),
      await api().delete(`${SERVERS}/${ref}`),
      await api().get(`${SERVERS}/${ref}/versions`),
      await api().get(`${SERVERS}/${ref}/versions/1.0.0`),
      await api().get(`${SERVERS}/${ref}/capabilities`),
      await api().post(`${SERVERS}/${ref}/refresh`),
      await api().get(`/api/v1/health/servers/${ref}`),
      await api().post(`/api/v1/health/servers/${ref}/probe`),
    ];
    for (const res of responses) {
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    }
    expect(await storedRows(name)).toEqual({ servers: 0, versions: 0 });
  });

  it('names the ref as the bad field when it cannot name a server', async () => {
    const res = await api().get(`${SERVERS}/..%2F..`);
    expectProblem(res, 400, 'ref');
  });

  it('answers 400 for a version that cannot be one, 404 for one that does not exist', async () => {
    const created = await api().post(SERVERS).send(serverBody()).expect(201);
    for (const version of ['%5E1.0', 'latest', '..', '1.0%2F2', '%00']) {
      expectProblem(await api().get(`${SERVERS}/${created.body.id}/versions/${version}`), 400);
    }
    expectProblem(await api().get(`${SERVERS}/${created.body.id}/versions/7.7.7`), 404);
  });

  const badQueries: [string, Record<string, string> | string, string | undefined][] = [
    ['limit 0', { limit: '0' }, 'limit'],
    ['limit 101', { limit: '101' }, 'limit'],
    ['a limit that is not a number', { limit: 'abc' }, 'limit'],
    ['a negative limit', { limit: '-1' }, 'limit'],
    ['a fractional limit', { limit: '1.5' }, 'limit'],
    ['an empty limit', { limit: '' }, 'limit'],
    ['a repeated limit', 'limit=1&limit=2', 'limit'],
    ['a cursor of bad characters', { cursor: '!!!' }, 'cursor'],
    ['a cursor that decodes to nonsense', { cursor: Buffer.from('hello').toString('base64url') }, 'cursor'],
    [
      'a cursor with an impossible date',
      { cursor: Buffer.from('2024-13-45T00:00:00.000Z|00000000-0000-4000-8000-000000000000').toString('base64url') },
      'cursor',
    ],
    ['a cursor over 200 characters', { cursor: 'a'.repeat(201) }, 'cursor'],
    ['a bad tag', { tag: 'Bad Tag' }, 'tag'],
    ['an unknown status', { status: 'gone' }, 'status'],
    ['q over 200 characters', { q: 'q'.repeat(201) }, 'q'],
    ['a NUL in q', { q: 'a\u0000' }, 'q'],
    ['an escape character in q', { q: '\u001b[2J' }, 'q'],
    ['an unknown parameter', { sort: 'name' }, 'sort'],
  ];

  it.each(badQueries)('refuses a list with %s', async (_what, query, field) => {
    const res = await api().get(SERVERS).query(query);
    expectProblem(res, 400, field);
  });

  const badImports: [string, string][] = [
    ['an empty array', '[]'],
    ['a string', '"io.x/y"'],
    ['a number', '42'],
    ['JSON that does not parse', '{"servers": ['],
    ['servers that are not an array', '{"servers": "io.x/y"}'],
    ['no servers', '{"servers": []}'],
    ['an envelope with more than servers', '{"servers": [{}], "dryRun": true}'],
    ['over 1000 documents', JSON.stringify(Array.from({ length: 1001 }, () => ({})))],
  ];

  it.each(badImports)('refuses an import of %s', async (_what, raw) => {
    const res = await api().post(`${SERVERS}/import`).set('Content-Type', 'application/json').send(raw);
    expectProblem(res, 400);
  });
});
