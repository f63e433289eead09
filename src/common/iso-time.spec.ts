import { isoTime } from './iso-time';

describe('isoTime', () => {
  it('says what toISOString says, across seconds, days, years and either side of 1970', () => {
    const starts = [
      Date.UTC(2026, 10, 22, 23, 59, 58),
      Date.UTC(1969, 11, 31, 23, 59, 58),
      Date.UTC(2024, 1, 28, 23, 59, 59),
    ];
    for (const start of starts) {
      for (let ms = start; ms < start + 3_000; ms += 7) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('pads the milliseconds, and follows the time back and forth', () => {
    const at = Date.UTC(2030, 0, 1, 0, 0, 0);
    for (const ms of [at, at + 5, at + 42, at + 999, at - 1, at + 1_000, at - 86_400_000, 0, 253402300799999]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });
});
