import { parsePrometheusText, valueOf } from './prometheus-text';

const VALID = [
  '# HELP http_total Requests, with a \\\\ and a \\n.',
  '# TYPE http_total counter',
  'http_total{route="/a",status="200"} 3',
  'http_total{route="say \\"hi\\"\\n",status="500"} 1 1700000000000',
  '# TYPE lat histogram',
  'lat_bucket{le="0.1"} 1',
  'lat_bucket{le="+Inf"} 2',
  'lat_sum 0.35',
  'lat_count 2',
  'up NaN',
  'down Nan',
  '',
].join('\n');

describe('parsePrometheusText', () => {
  it('reads families, escapes and histogram parts', () => {
    const families = parsePrometheusText(VALID);
    expect(families.get('http_total')).toMatchObject({ type: 'counter', help: 'Requests, with a \\ and a \n.' });
    expect(valueOf(families, 'http_total', { route: 'say "hi"\n', status: '500' })).toBe(1);
    expect(families.get('lat')?.samples).toHaveLength(4);
    expect(valueOf(families, 'up')).toBeNaN();
    expect(valueOf(families, 'down')).toBeNaN();
  });

  it.each([
    ['no final newline', 'a 1'],
    ['a TYPE after samples', 'a 1\n# TYPE a counter\n'],
    ['a family split in two', 'a 1\nb 1\na{x="1"} 2\n'],
    ['a duplicate series', 'a{x="1",y="2"} 1\na{y="2",x="1"} 1\n'],
    ['an unknown type', '# TYPE a thing\n'],
    ['a bad escape', 'a{x="\\t"} 1\n'],
    ['an unterminated label value', 'a{x="1} 1\n'],
    ['a reserved label', 'a{__name__="b"} 1\n'],
    ['a bad value', 'a 1,5\n'],
    ['a negative counter', '# TYPE a counter\na -1\n'],
    ['non-cumulative buckets', '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'],
    ['a +Inf bucket unlike the count', '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n'],
    ['a histogram without count', '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\n'],
  ])('rejects %s', (_what, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });
});
