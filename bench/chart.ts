import type { BenchReport, PathName } from './gateway';

/**
 * The latency percentiles of `npm run bench` as an SVG written by hand: one panel per concurrency, in each
 * the paths side by side with their p50, p90 and p99 as bars (each panel has its own scale).
 */
const PERCENTILES = [
  { key: 'p50', color: '#4e79a7' },
  { key: 'p90', color: '#f28e2b' },
  { key: 'p99', color: '#e15759' },
] as const;
const SHORT_LABELS: Record<PathName, string> = {
  direct: 'direct',
  floor: 'floor',
  slug: '/mcp/{slug}',
  aggregate: '/mcp',
  rest: 'REST',
};
const PANEL_WIDTH = 420;
const PANEL_HEIGHT = 260;
const MARGIN = { top: 40, right: 16, bottom: 40, left: 52 };

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A round step for about five grid lines up to `max`. */
function gridStep(max: number): number {
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= raw);
  return step ?? raw;
}

function panel(report: BenchReport, concurrency: number, x0: number, y0: number): string {
  const rows = report.calls.filter((m) => m.concurrency === concurrency);
  const max = Math.max(...rows.flatMap((m) => PERCENTILES.map((p) => m[p.key])), 0.001);
  const step = gridStep(max);
  const top = Math.ceil(max / step) * step;
  const plotWidth = PANEL_WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL_HEIGHT - MARGIN.top - MARGIN.bottom;
  const y = (value: number): number => y0 + MARGIN.top + plotHeight - (value / top) * plotHeight;
  const parts: string[] = [];
  parts.push(
    `<text x="${x0 + PANEL_WIDTH / 2}" y="${y0 + 22}" text-anchor="middle" font-weight="bold">concurrency ${concurrency}</text>`,
  );
  for (let value = 0; value <= top + step / 2; value += step) {
    const gy = y(value).toFixed(1);
    parts.push(
      `<line x1="${x0 + MARGIN.left}" x2="${x0 + PANEL_WIDTH - MARGIN.right}" y1="${gy}" y2="${gy}" stroke="#ddd"/>`,
      `<text x="${x0 + MARGIN.left - 6}" y="${gy}" text-anchor="end" dominant-baseline="middle" font-size="11">${Number(value.toPrecision(3))}</text>`,
    );
  }
  parts.push(
    `<text x="${x0 + 14}" y="${y0 + MARGIN.top + plotHeight / 2}" font-size="11" transform="rotate(-90 ${x0 + 14} ${y0 + MARGIN.top + plotHeight / 2})" text-anchor="middle">ms</text>`,
  );
  const group = plotWidth / Math.max(rows.length, 1);
  const bar = (group * 0.8) / PERCENTILES.length;
  rows.forEach((m, index) => {
    const gx = x0 + MARGIN.left + index * group + group * 0.1;
    PERCENTILES.forEach((p, pi) => {
      const value = m[p.key];
      const by = y(value);
      parts.push(
        `<rect x="${(gx + pi * bar).toFixed(1)}" y="${by.toFixed(1)}" width="${(bar - 1).toFixed(1)}" height="${(y(0) - by).toFixed(1)}" fill="${p.color}"><title>${escape(SHORT_LABELS[m.path])} ${p.key}: ${value.toFixed(2)} ms</title></rect>`,
      );
    });
    parts.push(
      `<text x="${(gx + group * 0.4).toFixed(1)}" y="${y0 + PANEL_HEIGHT - MARGIN.bottom + 16}" text-anchor="middle" font-size="12">${escape(SHORT_LABELS[m.path])}</text>`,
      `<text x="${(gx + group * 0.4).toFixed(1)}" y="${y0 + PANEL_HEIGHT - MARGIN.bottom + 30}" text-anchor="middle" font-size="10" fill="#555">${m.callsPerSecond.toFixed(0)}/s</text>`,
    );
  });
  return parts.join('\n');
}

export function chartSvg(report: BenchReport): string {
  const concurrencies = [...new Set(report.calls.map((m) => m.concurrency))];
  const columns = Math.min(2, concurrencies.length);
  const rows = Math.ceil(concurrencies.length / Math.max(columns, 1));
  const header = 56;
  const width = columns * PANEL_WIDTH;
  const height = header + rows * PANEL_HEIGHT + 24;
  const load = (report.machine.loadAverageBefore as number[]).map((l) => l.toFixed(2)).join(', ');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="bold">mcp-gateway: tools/call latency by path (ms)</text>`,
    `<text x="12" y="40" font-size="11" fill="#555">${escape(`${report.finishedAt} · ${String(report.machine.cpus)} CPUs · load average ${load} at start · ${report.command}`)}</text>`,
  ];
  PERCENTILES.forEach((p, index) => {
    const lx = width - 180 + index * 56;
    parts.push(
      `<rect x="${lx}" y="12" width="12" height="12" fill="${p.color}"/>`,
      `<text x="${lx + 16}" y="22" font-size="12">${p.key}</text>`,
    );
  });
  concurrencies.forEach((concurrency, index) => {
    parts.push(
      panel(report, concurrency, (index % columns) * PANEL_WIDTH, header + Math.floor(index / columns) * PANEL_HEIGHT),
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
