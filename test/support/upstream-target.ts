import type { UpstreamTarget } from '../../src/registry/server.schema';
import { classifyUpstreamError } from '../../src/upstream/upstream-error';

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

/** How the gateway classifies the failure of `promise` (an upstream call expected to fail); throws if it succeeds. */
export async function upstreamFailureOf(promise: Promise<unknown>): Promise<ReturnType<typeof classifyUpstreamError>> {
  try {
    await promise;
  } catch (error) {
    return classifyUpstreamError(error);
  }
  throw new Error('expected a failure');
}
