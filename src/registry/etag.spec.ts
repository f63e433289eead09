import { etagOf, ifMatchHolds, ifNoneMatchHits } from './etag';

const id = '0b9a3c1e-6f1d-4c84-9d4b-2f8a1e7c5d90';

describe('ETags', () => {
  it('are strong, stable for a revision and different across revisions', () => {
    expect(etagOf(id, 1)).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    expect(etagOf(id, 1)).toBe(etagOf(id, 1));
    expect(etagOf(id, 2)).not.toBe(etagOf(id, 1));
  });

  it('If-Match holds when absent, *, or listing the tag (strong comparison)', () => {
    const etag = etagOf(id, 3);
    expect(ifMatchHolds(undefined, etag)).toBe(true);
    expect(ifMatchHolds('*', etag)).toBe(true);
    expect(ifMatchHolds(`"a", ${etag}`, etag)).toBe(true);
    expect(ifMatchHolds(`W/${etag}`, etag)).toBe(false);
    expect(ifMatchHolds(etagOf(id, 2), etag)).toBe(false);
    expect(ifMatchHolds('', etag)).toBe(false);
  });

  it('If-None-Match hits on *, the tag, or its weak form', () => {
    const etag = etagOf(id, 3);
    expect(ifNoneMatchHits(undefined, etag)).toBe(false);
    expect(ifNoneMatchHits('*', etag)).toBe(true);
    expect(ifNoneMatchHits(`W/${etag}`, etag)).toBe(true);
    expect(ifNoneMatchHits('"other"', etag)).toBe(false);
  });
});
