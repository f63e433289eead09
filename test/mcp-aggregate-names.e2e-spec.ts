import request from 'supertest';
import { shortHash } from '../src/discovery/gateway-names';
import { eventually } from './support/eventually';
import { type GuardedUpstream, guardUpstream } from './support/guarded-upstream';
import { connectClient } from './support/mcp-client';
import { PagedUpstream } from './support/paged-upstream';

describe('/mcp: names two upstream tools share once made provider-safe', () => {
  let deployment: GuardedUpstream<PagedUpstream> | undefined;
  const role = 'Names.User';
  // `a.b` is offered as `{slug}__a_b_{hash}`; an upstream may name another tool exactly that.
  const crafted = `a_b_${shortHash('a.b')}`;

  beforeAll(async () => {
    const upstream = await PagedUpstream.start('names', {
      tools: [
        { name: 'a.b', description: 'dotted', inputSchema: { type: 'object' } },
        { name: crafted, description: 'crafted', inputSchema: { type: 'object' } },
        { name: 'plain', inputSchema: { type: 'object' } },
      ],
      pageSize: 10,
    });
    deployment = await guardUpstream(upstream, { slug: 'names', registration: { allowedRoles: [role] } });
  });

  afterAll(async () => {
    await deployment?.stop();
  });

  it('offers neither of two tools under one name, and names each tool once in tools/list', async () => {
    const { gw, issuer, slug } = deployment!;
    const { client } = await connectClient(`${gw.url}/mcp`, await issuer.token({ roles: [role] }));
    try {
      const names = await eventually(async () => {
        const listed = (await client.listTools()).tools
          .map((tool) => tool.name)
          .filter((name) => name.startsWith(slug));
        expect(listed).toContain(`${slug}__plain`);
        return listed;
      });
      expect(names).toEqual([`${slug}__plain`]);
      await expect(client.callTool({ name: `${slug}__a_b_${shortHash('a.b')}`, arguments: {} })).rejects.toThrow(
        'not found',
      );
    } finally {
      await client.close();
    }
  });

  it('keeps both on the REST bridge, where each has its own upstream name', async () => {
    const { gw, issuer, slug } = deployment!;
    const res = await request(gw.url)
      .get(`/mcp/${slug}/tools`)
      .set('Authorization', `Bearer ${await issuer.token({ roles: [role] })}`)
      .expect(200);
    const body = res.body as { tools: { name: string }[] };
    expect(body.tools.map((tool) => tool.name).sort()).toEqual(['a.b', crafted, 'plain'].sort());
  });
});
