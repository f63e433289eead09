import { randomFillSync } from 'node:crypto';

/** Random bytes drawn from the CSPRNG a block at a time, ten per id. */
const POOL = Buffer.alloc(10 * 256);
let taken = POOL.length;

/** The id's 16 bytes, and its text as ASCII bytes (hex digits and the four dashes), reused by every call. */
const BYTES = Buffer.alloc(16);
const TEXT = Buffer.from('00000000-0000-0000-0000-000000000000', 'latin1');
const DIGITS = Buffer.from('0123456789abcdef', 'latin1');
/** Where each byte's two digits go in the text: after the dashes that come before it. */
const AT = Array.from(
  { length: 16 },
  (_, i) => 2 * i + (i >= 4 ? 1 : 0) + (i >= 6 ? 1 : 0) + (i >= 8 ? 1 : 0) + (i >= 10 ? 1 : 0),
);

const MAX_TIME = 2 ** 48 - 1;

/**
 * A version 7 UUID (RFC 9562): the 48-bit Unix time in milliseconds `unixMs`, then 74 random bits. Ids made in
 * time order sort in time order to the millisecond, so a B-tree keyed by them grows at its right edge, where a
 * random (version 4) id lands on any leaf page of the index: for the audit trail's primary key, PostgreSQL then
 * touches one page per inserted row rather than a page anywhere in an index larger than its cache.
 */
export function uuidV7(unixMs: number): string {
  if (taken === POOL.length) {
    randomFillSync(POOL);
    taken = 0;
  }
  BYTES.writeUIntBE(Number.isFinite(unixMs) ? Math.max(0, Math.min(Math.floor(unixMs), MAX_TIME)) : 0, 0, 6);
  POOL.copy(BYTES, 6, taken, taken + 10);
  taken += 10;
  // The version (7) in the high nibble of byte 6; the RFC's variant (binary 10) in the two high bits of byte 8.
  BYTES[6] = 0x70 | (BYTES[6]! & 0x0f);
  BYTES[8] = 0x80 | (BYTES[8]! & 0x3f);
  for (let i = 0; i < 16; i++) {
    const byte = BYTES[i]!;
    TEXT[AT[i]!] = DIGITS[byte >> 4]!;
    TEXT[AT[i]! + 1] = DIGITS[byte & 0x0f]!;
  }
  return TEXT.toString('latin1');
}
