/**
 * A strict parser of the Prometheus text exposition format (version 0.0.4),
 * for tests: it throws, naming the line, on anything a Prometheus server
 * would reject or that breaks the format's rules (a TYPE after samples, a
 * family split in two, a duplicate series, a histogram whose buckets are not
 * cumulative or whose `+Inf` bucket differs from its count). Written here
 * because the npm parsers are unmaintained and lenient.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  /** The sample's own name (`x_bucket`, `x_sum`, ... for a histogram). */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help?: string;
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, MetricFamily>();
  const finished = new Set<string>();
  const seenSeries = new Set<string>();
  let current: MetricFamily | undefined;
  const lines = text.split('\n');
  lines.pop();

  const familyFor = (name: string, lineNo: number): MetricFamily => {
    if (current?.name !== name) {
      if (current) finished.add(current.name);
      if (finished.has(name)) throw new Error(`line ${lineNo}: metric family ${name} is split in two`);
      current = families.get(name) ?? { name, type: 'untyped', samples: [] };
      families.set(name, current);
    }
    return current;
  };

  lines.forEach((line, index) => {
    const lineNo = index + 1;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const match = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
      if (!match) return; // an ordinary comment
      const [, keyword, name = '', rest = ''] = match;
      if (!METRIC_NAME.test(name)) throw new Error(`line ${lineNo}: bad metric name ${name}`);
      const family = familyFor(name, lineNo);
      if (keyword === 'HELP') {
        if (family.help !== undefined) throw new Error(`line ${lineNo}: second HELP for ${name}`);
        family.help = unescapeHelp(rest, lineNo);
      } else {
        if (family.samples.length > 0) throw new Error(`line ${lineNo}: TYPE of ${name} after its samples`);
        if (!TYPES.has(rest.trim())) throw new Error(`line ${lineNo}: unknown type ${rest}`);
        family.type = rest.trim() as MetricType;
      }
      return;
    }
    const sample = parseSample(line, lineNo);
    const family = familyFor(familyNameOf(sample.name, current), lineNo);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    if (seenSeries.has(key)) throw new Error(`line ${lineNo}: duplicate series ${line}`);
    seenSeries.add(key);
    family.samples.push(sample);
  });

  for (const family of families.values()) {
    if (family.type === 'histogram') checkHistogram(family);
    if (family.type === 'counter') {
      for (const sample of family.samples) {
        if (!(sample.value >= 0)) throw new Error(`counter ${sample.name} has value ${sample.value}`);
      }
    }
  }
  return families;
}

/** The value of the one series of `name` with exactly these labels; undefined when absent. */
export function valueOf(
  families: Map<string, MetricFamily>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name === name && JSON.stringify(Object.entries(sample.labels).sort()) === wanted) return sample.value;
    }
  }
  return undefined;
}

/** Every sample named `name` whose labels include `match`. */
export function samplesOf(
  families: Map<string, MetricFamily>,
  name: string,
  match: Record<string, string> = {},
): Sample[] {
  const found: Sample[] = [];
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== name) continue;
      if (Object.entries(match).every(([key, value]) => sample.labels[key] === value)) found.push(sample);
    }
  }
  return found;
}

/** The sum over every sample named `name` whose labels include `match` (0 when none). */
export function sumOf(families: Map<string, MetricFamily>, name: string, match: Record<string, string> = {}): number {
  return samplesOf(families, name, match).reduce((total, sample) => total + sample.value, 0);
}

/** Samples of a histogram or summary belong to the family without their suffix. */
function familyNameOf(sampleName: string, current: MetricFamily | undefined): string {
  if (current && (current.type === 'histogram' || current.type === 'summary')) {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      if (sampleName === current.name + suffix) return current.name;
    }
  }
  return sampleName;
}

function parseSample(line: string, lineNo: number): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (!nameMatch) throw new Error(`line ${lineNo}: no metric name in ${JSON.stringify(line)}`);
  const name = nameMatch[0];
  let pos = name.length;
  const labels: Record<string, string> = {};
  if (line[pos] === '{') {
    pos++;
    while (line[pos] !== '}') {
      const labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(pos));
      if (!labelMatch?.[1]) throw new Error(`line ${lineNo}: bad label at column ${pos + 1}`);
      const labelName = labelMatch[1];
      if (!LABEL_NAME.test(labelName) || labelName.startsWith('__')) {
        throw new Error(`line ${lineNo}: reserved or bad label name ${labelName}`);
      }
      if (labelName in labels) throw new Error(`line ${lineNo}: label ${labelName} twice`);
      pos += labelMatch[0].length;
      let value = '';
      for (;;) {
        const char = line[pos];
        if (char === undefined) throw new Error(`line ${lineNo}: unterminated label value`);
        pos++;
        if (char === '"') break;
        if (char === '\\') {
          const escaped = line[pos++];
          if (escaped === 'n') value += '\n';
          else if (escaped === '\\' || escaped === '"') value += escaped;
          else throw new Error(`line ${lineNo}: bad escape \\${escaped ?? ''} in a label value`);
        } else {
          value += char;
        }
      }
      labels[labelName] = value;
      if (line[pos] === ',') pos++;
      else if (line[pos] !== '}') throw new Error(`line ${lineNo}: expected , or } at column ${pos + 1}`);
    }
    pos++;
  }
  if (line[pos] !== ' ') throw new Error(`line ${lineNo}: expected a space before the value`);
  const parts = line.slice(pos + 1).split(' ');
  if (parts.length > 2 || parts[0] === undefined) throw new Error(`line ${lineNo}: bad value part`);
  const value = parseValue(parts[0], lineNo);
  if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`line ${lineNo}: bad timestamp`);
  return { name, labels, value };
}

/** As Prometheus reads them (Go's ParseFloat): `NaN` and `Inf` in any case (prom-client writes `Nan`). */
function parseValue(text: string, lineNo: number): number {
  const lower = text.toLowerCase();
  if (lower === 'nan') return NaN;
  if (/^\+?inf(inity)?$/.test(lower)) return Infinity;
  if (/^-inf(inity)?$/.test(lower)) return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`line ${lineNo}: bad value ${text}`);
  return Number(text);
}

function unescapeHelp(text: string, lineNo: number): string {
  return text.replace(/\\(.?)/g, (_all, char: string) => {
    if (char === 'n') return '\n';
    if (char === '\\') return '\\';
    throw new Error(`line ${lineNo}: bad escape in HELP`);
  });
}

function checkHistogram(family: MetricFamily): void {
  const bySeries = new Map<string, { buckets: { le: number; value: number }[]; count?: number; sum?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    const series = bySeries.get(key) ?? { buckets: [] };
    bySeries.set(key, series);
    if (sample.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      series.buckets.push({ le: parseValue(le, 0), value: sample.value });
    } else if (sample.name === `${family.name}_count`) {
      series.count = sample.value;
    } else if (sample.name === `${family.name}_sum`) {
      series.sum = sample.value;
    } else {
      throw new Error(`${family.name}: unexpected sample ${sample.name}`);
    }
  }
  for (const [key, series] of bySeries) {
    if (series.count === undefined || series.sum === undefined)
      throw new Error(`${family.name}${key}: no _count or _sum`);
    const last = series.buckets.at(-1);
    if (last?.le !== Infinity) throw new Error(`${family.name}${key}: no +Inf bucket last`);
    for (let i = 1; i < series.buckets.length; i++) {
      const [previous, bucket] = [series.buckets[i - 1], series.buckets[i]];
      if (!previous || !bucket || bucket.le <= previous.le || bucket.value < previous.value) {
        throw new Error(`${family.name}${key}: buckets not increasing and cumulative`);
      }
    }
    if (last.value !== series.count) throw new Error(`${family.name}${key}: +Inf bucket differs from _count`);
  }
}
