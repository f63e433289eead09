import { ProbeScheduler, type ProbeSchedulerOptions } from './probe-scheduler';

/** A probe the test finishes by hand. */
class ManualProbes {
  readonly started: string[] = [];
  private readonly pending = new Map<string, () => void>();

  readonly probe = (serverId: string): Promise<void> => {
    this.started.push(serverId);
    return new Promise<void>((resolve) => this.pending.set(serverId, resolve));
  };

  get running(): string[] {
    return [...this.pending.keys()];
  }

  async finish(serverId: string): Promise<void> {
    const resolve = this.pending.get(serverId);
    if (!resolve) throw new Error(`${serverId} is not being probed`);
    this.pending.delete(serverId);
    resolve();
    await settle();
  }
}

/** Lets promise callbacks (the scheduler's bookkeeping) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function scheduler(
  probes: ManualProbes,
  servers: string[] | (() => Promise<string[]>),
  options: Partial<ProbeSchedulerOptions> = {},
): ProbeScheduler {
  return new ProbeScheduler({
    intervalMs: 60_000,
    concurrency: 2,
    listServers: typeof servers === 'function' ? servers : () => Promise.resolve(servers),
    probe: probes.probe,
    onError: () => undefined,
    ...options,
  });
}

describe('ProbeScheduler', () => {
  let subject: ProbeScheduler | undefined;

  afterEach(() => subject?.stop());

  it('runs at most `concurrency` probes at once and starts the next as one finishes', async () => {
    const probes = new ManualProbes();
    subject = scheduler(probes, ['a', 'b', 'c', 'd']);
    await subject.tick();
    expect(probes.running).toEqual(['a', 'b']);
    await probes.finish('a');
    expect(probes.running).toEqual(['b', 'c']);
    await probes.finish('c');
    expect(probes.running).toEqual(['b', 'd']);
    expect(probes.started).toEqual(['a', 'b', 'c', 'd']);
  });

  it('never queues a server twice, nor one that is being probed', async () => {
    const probes = new ManualProbes();
    subject = scheduler(probes, ['a', 'b', 'c'], { concurrency: 1 });
    await subject.tick();
    await subject.tick();
    await probes.finish('a');
    await probes.finish('b');
    await probes.finish('c');
    expect(probes.started).toEqual(['a', 'b', 'c']);
  });

  it('keeps probing the others while one probe hangs, and does not queue the hung one again', async () => {
    const probes = new ManualProbes();
    subject = scheduler(probes, ['hung', 'x', 'y']);
    await subject.tick();
    await probes.finish('x');
    await probes.finish('y');
    for (let round = 0; round < 3; round++) {
      await subject.tick();
      await probes.finish('x');
      await probes.finish('y');
    }
    expect(probes.started.filter((id) => id === 'x')).toHaveLength(4);
    expect(probes.started.filter((id) => id === 'hung')).toHaveLength(1);
    expect(probes.running).toEqual(['hung']);
  });

  it('skips a tick while the previous round is still listing the servers', async () => {
    const probes = new ManualProbes();
    let release: (ids: string[]) => void = () => undefined;
    subject = scheduler(probes, () => new Promise<string[]>((resolve) => (release = resolve)));
    const first = subject.tick();
    await subject.tick();
    expect(subject.counters).toMatchObject({ rounds: 0, roundsSkipped: 1 });
    release(['a']);
    await first;
    expect(subject.counters).toMatchObject({ rounds: 1, roundsSkipped: 1 });
    expect(probes.running).toEqual(['a']);
  });

  it('reports a failing listing and goes on with the next round', async () => {
    const probes = new ManualProbes();
    const errors: unknown[] = [];
    let calls = 0;
    subject = scheduler(
      probes,
      () => (++calls === 1 ? Promise.reject(new Error('database down')) : Promise.resolve(['a'])),
      { onError: (error) => errors.push(error) },
    );
    await subject.tick();
    await subject.tick();
    expect(errors).toEqual([new Error('database down')]);
    expect(probes.running).toEqual(['a']);
  });

  it('reports a probe that throws and frees its slot', async () => {
    const errors: [unknown, string | undefined][] = [];
    const started: string[] = [];
    subject = new ProbeScheduler({
      intervalMs: 60_000,
      concurrency: 1,
      listServers: () => Promise.resolve(['a', 'b']),
      probe: (id) => {
        started.push(id);
        return id === 'a' ? Promise.reject(new Error('boom')) : Promise.resolve();
      },
      onError: (error, id) => errors.push([error, id]),
    });
    await subject.tick();
    await settle();
    expect(errors).toEqual([[new Error('boom'), 'a']]);
    expect(started).toEqual(['a', 'b']);
  });

  describe('once started', () => {
    it('runs a round every interval on an unref’d timer', async () => {
      jest.useFakeTimers();
      try {
        const probes = new ManualProbes();
        let listed = 0;
        subject = scheduler(
          probes,
          () => {
            listed++;
            return Promise.resolve([]);
          },
          { intervalMs: 1_000 },
        );
        subject.start();
        expect(listed).toBe(0);
        await jest.advanceTimersByTimeAsync(3_000);
        expect(listed).toBe(3);
        expect(subject.counters.rounds).toBe(3);
      } finally {
        jest.useRealTimers();
      }
    });

    it('probes a requested server before the queued ones', async () => {
      const probes = new ManualProbes();
      subject = scheduler(probes, ['a', 'b', 'c'], { concurrency: 1 });
      subject.start();
      await subject.tick();
      subject.request('new');
      await probes.finish('a');
      expect(probes.running).toEqual(['new']);
      subject.request('c');
      await probes.finish('new');
      expect(probes.running).toEqual(['c']);
      await probes.finish('c');
      await probes.finish('b');
      expect(probes.started).toEqual(['a', 'new', 'c', 'b']);
    });

    it('probes a server requested while being probed once more right after', async () => {
      const probes = new ManualProbes();
      subject = scheduler(probes, ['a', 'b'], { concurrency: 1 });
      subject.start();
      await subject.tick();
      subject.request('a');
      await probes.finish('a');
      expect(probes.running).toEqual(['a']);
      await probes.finish('a');
      expect(probes.running).toEqual(['b']);
    });

    it('forgets a deleted server that is queued', async () => {
      const probes = new ManualProbes();
      subject = scheduler(probes, ['a', 'b', 'c'], { concurrency: 1 });
      subject.start();
      await subject.tick();
      subject.forget('b');
      await probes.finish('a');
      await probes.finish('c');
      expect(probes.started).toEqual(['a', 'c']);
    });

    it('starts nothing after stop, and leaves the probes under way to finish', async () => {
      const probes = new ManualProbes();
      subject = scheduler(probes, ['a', 'b', 'c'], { concurrency: 1 });
      subject.start();
      await subject.tick();
      subject.stop();
      expect(subject.isRunning).toBe(false);
      subject.request('d');
      await subject.tick();
      await probes.finish('a');
      expect(probes.started).toEqual(['a']);
      subject.start();
      expect(subject.isRunning).toBe(false);
    });
  });

  it('with interval 0 never starts, and ignores requests', async () => {
    const probes = new ManualProbes();
    subject = scheduler(probes, ['a'], { intervalMs: 0 });
    subject.start();
    expect(subject.isRunning).toBe(false);
    subject.request('a');
    await settle();
    expect(probes.started).toEqual([]);
  });
});
