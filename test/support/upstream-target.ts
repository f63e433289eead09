import type { UpstreamTarget } from '../../src/registry/server.schema';

/** A registered upstream as the gateway's clients take it: at `url`, no credentials, default timeouts. */
export function upstreamTarget(url: string, overrides: Partial<UpstreamTarget> = {}): UpstreamTarget {
  return {
    id: 'id',
    slug: 'slug',
    url,
    transport: 'streamable-http',
    auth: { type: 'none' },
    timeouts: {},
    ...overrides,
  };
}
