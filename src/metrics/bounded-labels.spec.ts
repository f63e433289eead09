import { BoundedLabels, OTHER_LABEL } from './bounded-labels';

describe('BoundedLabels', () => {
  it('keeps the first values admitted per scope, then answers other', () => {
    const labels = new BoundedLabels(2);
    expect(labels.label('a', 'x', true)).toBe('x');
    expect(labels.label('a', 'y', true)).toBe('y');
    expect(labels.label('a', 'z', true)).toBe(OTHER_LABEL);
    expect(labels.label('a', 'x', false)).toBe('x');
    expect(labels.label('b', 'z', true)).toBe('z');
    expect(labels.size('a')).toBe(2);
  });

  it('admits nothing the caller does not vouch for, nor overlong values, nor "other" itself', () => {
    const labels = new BoundedLabels(10);
    expect(labels.label('a', 'made-up', false)).toBe(OTHER_LABEL);
    expect(labels.label('a', 'x'.repeat(129), true)).toBe(OTHER_LABEL);
    expect(labels.label('a', OTHER_LABEL, true)).toBe(OTHER_LABEL);
    expect(labels.size('a')).toBe(0);
    expect(labels.label('a', 'made-up', true)).toBe('made-up');
  });
});
