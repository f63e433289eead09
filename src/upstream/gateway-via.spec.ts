import { loadConfig } from '../config/config';
import type { Principal } from '../auth/principal';
import { parseUpstreamTarget, upstreamAuthInputSchema } from '../registry/server.schema';
import { LoopRefused, loopRefusalOf, viaAfter, viaEntryOf, viaPseudonymOf } from './gateway-via';
import { UpstreamConnector } from './upstream-connector';
import { UrlGuard } from './url-guard';

const A = viaPseudonymOf('https://a.test');
const B = viaPseudonymOf('https://b.test');

describe('viaAfter', () => {
  it('appends the entry to what the request came with, as a proxy does', () => {
    expect(viaAfter('1.0 fred, 1.1 proxy.example', `1.1 ${A}`)).toBe(`1.0 fred, 1.1 proxy.example, 1.1 ${A}`);
  });

  it.each([undefined, '', '  '])('is the entry alone after %j', (incoming) => {
    expect(viaAfter(incoming, `1.1 ${A}`)).toBe(`1.1 ${A}`);
  });
});

describe('loopRefusalOf', () => {
  it("is this gateway's loop when the refusing gateway is the last entry sent, its own", () => {
    const refused = loopRefusalOf(400, A, `1.1 proxy.example, 1.1 ${A}`);
    expect(refused).toBeInstanceOf(LoopRefused);
    expect(refused).toMatchObject({ gateway: A, ours: true, kind: 'http_status', httpStatus: 400 });
    expect(refused?.message).toBe(
      "the upstream answered HTTP 400 Loop Detected: the server's URL leads back to this gateway",
    );
  });

  it('names a gateway the request passed through before this one', () => {
    const refused = loopRefusalOf(400, ` ${A} `, `1.1 ${A}, 1.1 ${B}`);
    expect(refused).toMatchObject({ gateway: A, ours: false });
    expect(refused?.message).toBe(
      `the upstream answered HTTP 400 Loop Detected: the server's URL leads back to gateway ${A}, which this request had passed through`,
    );
  });

  it.each<[string, number, string | undefined, string | undefined]>([
    ['another status', 508, A, `1.1 ${A}`],
    ['no loop header', 400, undefined, `1.1 ${A}`],
    ['nothing sent in Via', 400, A, undefined],
    ['a gateway the request never passed', 400, B, `1.1 ${A}`],
    ['a header that is no pseudonym', 400, `${A} and more`, `1.1 ${A}`],
    ['text echoed from the Via sent', 400, 'proxy.example', `1.1 proxy.example, 1.1 ${A}`],
  ])('is no loop refusal with %s', (_what, status, named, sent) => {
    expect(loopRefusalOf(status, named, sent)).toBeUndefined();
  });
});

describe("UpstreamConnector's Via", () => {
  const config = loadConfig({ PUBLIC_URL: 'https://a.test', HOPS: '1.1 forged.example' });
  const connector = new UpstreamConnector(config, new UrlGuard({ allowedHosts: [], deniedHosts: [] }));
  const principal: Principal = { tid: 't', oid: 'o', clientId: 'c', appOnly: false, scopes: [], roles: [] };
  const stored = (auth: unknown) => {
    const parsed = parseUpstreamTarget({
      id: 'id',
      slug: 's',
      url: 'https://up.test/mcp',
      transport: 'sse',
      auth,
      status: 'active',
      timeouts: {},
      toolRules: {},
    });
    if (!('target' in parsed)) throw new Error(`stored row did not parse: ${JSON.stringify(parsed.problems)}`);
    return parsed.target;
  };

  it("appends the gateway's entry to the caller's Via", async () => {
    const headers = await connector.headersFor(stored({ type: 'none' }), {
      principal,
      token: 't',
      via: '1.1 b.example',
    });
    expect(headers).toEqual({ via: `1.1 b.example, ${viaEntryOf('https://a.test')}` });
  });

  it('keeps a stored server whose static headers name Via readable, and sends none of them', async () => {
    const auth = { type: 'headers', headers: { Via: { env: 'HOPS' }, VIA: { env: 'HOPS' }, 'X-Key': { env: 'HOPS' } } };
    expect(upstreamAuthInputSchema.safeParse(auth).success).toBe(false);
    const headers = await connector.headersFor(stored(auth), { principal, token: 't', via: '1.1 b.example' });
    expect(headers).toEqual({ 'X-Key': '1.1 forged.example', via: `1.1 b.example, ${viaEntryOf('https://a.test')}` });
  });
});
