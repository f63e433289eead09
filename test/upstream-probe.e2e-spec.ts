import { loadConfig } from '../src/config/config';
import type { UpstreamTarget } from '../src/registry/server.schema';
import { UpstreamConnector } from '../src/upstream/upstream-connector';
import { UrlGuard } from '../src/upstream/url-guard';
import { UpstreamProbe } from '../src/upstream-health/upstream-probe';
import { waitUntil } from './support/eventually';
import { SCRIPTED_SESSION, ScriptedUpstream } from './support/scripted-upstream';
import { upstreamTarget } from './support/upstream-target';

describe('a health probe, against a scripted upstream', () => {
  const config = loadConfig({ UPSTREAM_ALLOWED_HOSTS: 'loopback' });
  const guard = new UrlGuard(config.upstream);
  const probe = new UpstreamProbe(new UpstreamConnector(config, guard), guard);
  let upstream: ScriptedUpstream;
  let target: UpstreamTarget;

  beforeEach(async () => {
    upstream = new ScriptedUpstream();
    target = upstreamTarget(await upstream.start());
  });

  afterEach(() => upstream.stop());

  it('initializes, pings and ends the session, without opening its event stream', async () => {
    const result = await probe.run(target, { timeoutMs: 5_000 });
    expect(result).toMatchObject({ ok: true, latencyMs: expect.any(Number) });
    await waitUntil(() => upstream.received.some((entry) => entry.method === 'DELETE'), 'the session was ended');
    expect(upstream.received.map((entry) => (entry.body?.method as string | undefined) ?? entry.method)).toEqual([
      'initialize',
      'notifications/initialized',
      'ping',
      'DELETE',
    ]);
    const [, initialized, ping, ended] = upstream.received;
    for (const entry of [initialized, ping, ended]) expect(entry?.headers['mcp-session-id']).toBe(SCRIPTED_SESSION);
  });

  it('takes "method not found" for ping as an answer, and any other error as a protocol failure', async () => {
    upstream.pingAnswer = 'method-not-found';
    expect(await probe.run(target, { timeoutMs: 5_000 })).toMatchObject({ ok: true });
    upstream.pingAnswer = 'error';
    expect(await probe.run(target, { timeoutMs: 5_000 })).toMatchObject({
      ok: false,
      kind: 'protocol',
      message: 'MCP error -32603: broken',
    });
  });

  it('fails as a timeout when the ping gets no answer in time, and still ends the session', async () => {
    upstream.pingAnswer = 'none';
    const result = await probe.run(target, { timeoutMs: 300 });
    expect(result).toMatchObject({ ok: false, kind: 'timeout', message: 'no answer within 300 ms' });
    await waitUntil(() => upstream.received.some((entry) => entry.method === 'DELETE'), 'the session was ended');
  });

  it('fails as a protocol error once the ping answer is longer than the gateway reads', async () => {
    upstream.pingAnswer = 'endless';
    // Well within the bound: the probe stops at the limit, not when the upstream stops.
    expect(await probe.run(target, { timeoutMs: 60_000 })).toMatchObject({
      ok: false,
      kind: 'protocol',
      message: 'the upstream answered with more than 64 MiB, more than the gateway reads',
    });
  });

  it('fails as a protocol error once an event of the ping answer is longer than the gateway reads', async () => {
    upstream.pingAnswer = 'endless-event';
    expect(await probe.run(target, { timeoutMs: 60_000 })).toMatchObject({
      ok: false,
      kind: 'protocol',
      message: 'the upstream sent an event of more than 64 MiB, more than the gateway reads',
    });
  });

  it('gives up at once when the prober stops', async () => {
    upstream.pingAnswer = 'none';
    const stopping = new AbortController();
    const running = probe.run(target, { timeoutMs: 60_000, signal: stopping.signal });
    await waitUntil(() => upstream.bodies('POST').some((body) => body.method === 'ping'), 'the ping was sent');
    stopping.abort();
    expect(await running).toMatchObject({ ok: false, kind: 'timeout', message: expect.stringMatching(/abandoned/) });
  });
});
