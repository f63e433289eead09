import { appendLatency, percentile } from './latency';

describe('percentile (nearest rank)', () => {
  it('has no value for no latencies', () => {
    expect(percentile([], 50)).toBeUndefined();
    expect(percentile([], 95)).toBeUndefined();
  });

  it('is the one value when there is one', () => {
    expect(percentile([42], 50)).toBe(42);
    expect(percentile([42], 95)).toBe(42);
  });

  it('picks measured values, never interpolations, whatever the input order', () => {
    const values = [9, 2, 7, 4, 1, 10, 3, 8, 6, 5];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 95)).toBe(10);
    expect(percentile([10, 20], 50)).toBe(10);
    expect(percentile([10, 20], 95)).toBe(20);
  });

  it('over a full window of 20, p50 is the 10th and p95 the 19th smallest', () => {
    const values = Array.from({ length: 20 }, (_, i) => (i + 1) * 10).reverse();
    expect(percentile(values, 50)).toBe(100);
    expect(percentile(values, 95)).toBe(190);
  });

  it('does not reorder the caller’s array', () => {
    const values = [3, 1, 2];
    percentile(values, 50);
    expect(values).toEqual([3, 1, 2]);
  });
});

describe('appendLatency', () => {
  it('appends the newest last', () => {
    expect(appendLatency([1, 2], 3, 5)).toEqual([1, 2, 3]);
  });

  it('drops the oldest beyond the window', () => {
    expect(appendLatency([1, 2, 3], 4, 3)).toEqual([2, 3, 4]);
    expect(appendLatency([1, 2, 3, 4, 5], 6, 3)).toEqual([4, 5, 6]);
  });

  it('leaves the given window alone', () => {
    const window = [1, 2, 3];
    appendLatency(window, 4, 3);
    expect(window).toEqual([1, 2, 3]);
  });
});
