import * as vm from 'node:vm';
import { collectGarbage, trimWhenIdle } from './gc-tuning';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('collectGarbage', () => {
  it('collects, and leaves `gc` exposed to no context made afterwards', () => {
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
    expect(collectGarbage()).toBeGreaterThanOrEqual(0);
    expect(vm.runInNewContext('typeof gc')).toBe('undefined');
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
  });
});

describe('trimWhenIdle', () => {
  const often = { checkMs: 20, idleUtilization: 1, spareBytes: 0, minIntervalMs: 60_000 };

  it('collects in an idle process with spare heap, then not again before its interval', async () => {
    const pauses: number[] = [];
    const stop = trimWhenIdle((pauseMs) => pauses.push(pauseMs), often);
    try {
      await sleep(300);
      expect(pauses).toHaveLength(1);
      expect(pauses[0]).toBeGreaterThanOrEqual(0);
      expect(vm.runInNewContext('typeof gc')).toBe('undefined');
    } finally {
      stop();
    }
  });

  it('leaves a busy process alone', async () => {
    const pauses: number[] = [];
    // Busy nine tenths of the time: far above the idle share allowed.
    const busy = setInterval(() => {
      const until = performance.now() + 18;
      while (performance.now() < until);
    }, 20);
    const stop = trimWhenIdle((pauseMs) => pauses.push(pauseMs), { ...often, idleUtilization: 0.3 });
    try {
      await sleep(300);
      expect(pauses).toEqual([]);
    } finally {
      stop();
      clearInterval(busy);
    }
  });

  it('leaves a heap with little to give back alone, and stops when told', async () => {
    const pauses: number[] = [];
    const stop = trimWhenIdle((pauseMs) => pauses.push(pauseMs), { ...often, spareBytes: 2 ** 40 });
    await sleep(150);
    stop();
    const after = trimWhenIdle((pauseMs) => pauses.push(pauseMs), often);
    after();
    await sleep(150);
    expect(pauses).toEqual([]);
  });
});
