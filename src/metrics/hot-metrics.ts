import type { Metric, Registry } from 'prom-client';

/**
 * Counters and histograms for the per-request paths. prom-client's own
 * `inc(labels)` / `observe(labels, v)` validate and hash the label object and
 * key buckets by number-as-string on every call (several microseconds per MCP
 * exchange here); these hand out a cell per label set once, which the caller
 * keeps, so counting is a field increment and a short bucket scan. They join
 * a prom-client `Registry`, which renders them with everything else.
 */

interface Series<C> {
  labels: Record<string, string>;
  cell: C;
}

/** prom-client renders anything with these fields; `get` is what a scrape calls. */
interface MetricValue {
  metricName?: string;
  labels: Record<string, string>;
  value: number;
}

abstract class HotFamily<C> {
  private readonly series = new Map<string, Series<C>>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    // Not a prom-client class, but it has what the registry reads: name, help, type and get().
    registry.registerMetric(this as unknown as Metric);
  }

  abstract readonly type: 'counter' | 'histogram';

  /** The cell of one label set, created on first use. Callers cache it: building the key is the costly part. */
  cell(values: readonly string[]): C {
    const key = values.join('\u0000');
    let series = this.series.get(key);
    if (!series) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((name, index) => (labels[name] = values[index] ?? ''));
      series = { labels, cell: this.newCell() };
      this.series.set(key, series);
    }
    return series.cell;
  }

  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: 'sum' } {
    const values: MetricValue[] = [];
    for (const series of this.series.values()) this.render(series, values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  protected abstract newCell(): C;
  protected abstract render(series: Series<C>, into: MetricValue[]): void;
}

export class CounterCell {
  value = 0;
}

export class HotCounter extends HotFamily<CounterCell> {
  readonly type = 'counter';

  protected newCell(): CounterCell {
    return new CounterCell();
  }

  protected render({ labels, cell }: Series<CounterCell>, into: MetricValue[]): void {
    into.push({ labels, value: cell.value });
  }
}

export class HistogramCell {
  /** Per bucket, not cumulative; the `+Inf` bucket is `count`. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: Float64Array) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let index = 0;
    while (index < bounds.length && value > (bounds[index] as number)) index++;
    if (index < bounds.length) this.counts[index] = (this.counts[index] as number) + 1;
    this.sum += value;
    this.count++;
  }
}

export class HotHistogram extends HotFamily<HistogramCell> {
  readonly type = 'histogram';
  private readonly bounds: Float64Array;
  private readonly boundLabels: string[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
    this.boundLabels = Array.from(this.bounds, (bound) => String(bound));
  }

  protected newCell(): HistogramCell {
    return new HistogramCell(this.bounds);
  }

  protected render({ labels, cell }: Series<HistogramCell>, into: MetricValue[]): void {
    let cumulative = 0;
    const bucket = `${this.name}_bucket`;
    this.boundLabels.forEach((le, index) => {
      cumulative += cell.counts[index] as number;
      into.push({ metricName: bucket, labels: { ...labels, le }, value: cumulative });
    });
    into.push({ metricName: bucket, labels: { ...labels, le: '+Inf' }, value: cell.count });
    into.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
    into.push({ metricName: `${this.name}_count`, labels, value: cell.count });
  }
}

/**
 * Cells (or anything) made once per (a, b, c) and found again with three map lookups: on the request path this is
 * cheaper than building a key string per request.
 */
export class CellsByThreeKeys<A, B, C, V> {
  private readonly byA = new Map<A, Map<B, Map<C, V>>>();

  constructor(private readonly make: (a: A, b: B, c: C) => V) {}

  get(a: A, b: B, c: C): V {
    let byB = this.byA.get(a);
    if (!byB) {
      byB = new Map();
      this.byA.set(a, byB);
    }
    let byC = byB.get(b);
    if (!byC) {
      byC = new Map();
      byB.set(b, byC);
    }
    let value = byC.get(c);
    if (value === undefined) {
      value = this.make(a, b, c);
      byC.set(c, value);
    }
    return value;
  }
}
