import { z } from 'zod';
import { uuidV7 } from './uuid-v7';

const FORMAT = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 48-bit time at the front of a version 7 UUID. */
const timeOf = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16);

describe('uuidV7', () => {
  it('is a version 7 UUID of the RFC variant, carrying the given millisecond, that the API schemas accept', () => {
    const at = Date.parse('2026-11-23T02:10:00.123Z');
    for (let i = 0; i < 1_000; i++) {
      const id = uuidV7(at);
      expect(id).toMatch(FORMAT);
      expect(timeOf(id)).toBe(at);
    }
    expect(z.uuid().safeParse(uuidV7(at)).success).toBe(true);
  });

  it('sorts in time order across milliseconds, as text and as PostgreSQL compares uuids (bytewise)', () => {
    const start = Date.parse('2026-11-23T00:00:00Z');
    const ids = Array.from({ length: 500 }, (_, i) => uuidV7(start + i * 7));
    expect([...ids].sort()).toEqual(ids);
  });

  it('draws fresh randomness for every id: 20,000 in one millisecond are all different', () => {
    const ids = new Set(Array.from({ length: 20_000 }, () => uuidV7(0)));
    expect(ids.size).toBe(20_000);
    // Across the pool's refills too: no two ids share their random tail.
    expect(new Set([...ids].map((id) => id.slice(-12))).size).toBe(20_000);
  });

  it('keeps times outside 48 bits in range instead of writing a malformed id', () => {
    expect(uuidV7(-5)).toMatch(/^00000000-0000-7/);
    expect(uuidV7(2 ** 50)).toMatch(/^ffffffff-ffff-7/);
    expect(uuidV7(1.9)).toMatch(/^00000000-0001-7/);
    expect(uuidV7(Number.NaN)).toMatch(/^00000000-0000-7/);
    expect(uuidV7(Number.POSITIVE_INFINITY)).toMatch(/^00000000-0000-7/);
  });
});
