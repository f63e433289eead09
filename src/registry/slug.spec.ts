import { deriveSlug, firstFreeSlug, slugCandidate } from './slug';
import { SERVER_SLUG } from './server.schema';

describe('deriveSlug', () => {
  it.each([
    ['com.contoso/github', 'github'],
    ['io.example/My_Server.v2', 'my-server-v2'],
    ['io.example/--Weird__.Name--', 'weird-name'],
    ['io.example/___', 'server'],
    ['io.example/-', 'server'],
    [`io.example/${'a'.repeat(40)}`, 'a'.repeat(32)],
    [`io.example/${'a'.repeat(31)}-b`, 'a'.repeat(31)],
  ])('derives %s → %s', (name, slug) => {
    expect(deriveSlug(name)).toBe(slug);
    expect(slug).toMatch(SERVER_SLUG);
  });
});

describe('slugCandidate', () => {
  it('suffixes from the second candidate on, within 32 characters', () => {
    expect(slugCandidate('github', 1)).toBe('github');
    expect(slugCandidate('github', 2)).toBe('github-2');
    expect(slugCandidate('a'.repeat(32), 12)).toBe(`${'a'.repeat(29)}-12`);
    expect(slugCandidate(`${'a'.repeat(29)}-bc`, 2)).toBe(`${'a'.repeat(29)}-2`);
  });
});

describe('firstFreeSlug', () => {
  it('takes the first candidate neither taken nor reserved', () => {
    expect(firstFreeSlug('github', new Set())).toBe('github');
    expect(firstFreeSlug('github', new Set(['github', 'github-2']))).toBe('github-3');
    expect(firstFreeSlug('export', new Set())).toBe('export-2');
    expect(firstFreeSlug('import', new Set(['import-2']))).toBe('import-3');
  });
});
