import { RestartBackoff } from './restart-backoff';

describe('RestartBackoff', () => {
  const options = { initialMs: 1_000, maxMs: 8_000, stableAfterMs: 30_000 };

  it('restarts a worker that ran a while at once, every time', () => {
    const backoff = new RestartBackoff(options);
    expect([60_000, 45_000, 30_000].map((up) => backoff.delayAfter(up))).toEqual([0, 0, 0]);
  });

  it('waits ever longer, up to the maximum, for a worker that keeps dying at start', () => {
    const backoff = new RestartBackoff(options);
    expect(Array.from({ length: 7 }, () => backoff.delayAfter(0))).toEqual([
      0, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000,
    ]);
  });

  it('starts over once a restarted worker stays up', () => {
    const backoff = new RestartBackoff(options);
    for (let i = 0; i < 4; i++) backoff.delayAfter(500);
    expect(backoff.delayAfter(29_999)).toBe(8_000);
    expect(backoff.delayAfter(30_000)).toBe(0);
    expect(backoff.delayAfter(10)).toBe(1_000);
  });
});
