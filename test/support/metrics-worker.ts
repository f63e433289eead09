/**
 * A cluster worker for test/cluster-metrics.e2e-spec.ts: a registry with one counter at `CALLS`, reported to the
 * primary when it asks (unless `SILENT=1`), and a scrape through the primary on the message `scrape`.
 */
import { Counter, Registry } from 'prom-client';
import { clusterScrape } from '../../src/cluster/cluster-metrics';

const registry = new Registry();
new Counter({ name: 'test_calls_total', help: 'Calls this worker made', registers: [registry] }).inc(
  Number(process.env.CALLS ?? 0),
);

if (process.env.SILENT !== '1') {
  const scrape = clusterScrape(registry, 2_000);
  process.on('message', (message) => {
    if (message !== 'scrape') return;
    scrape().then(
      (text) => process.send?.({ scraped: text }),
      (error: unknown) => process.send?.({ failed: error instanceof Error ? error.message : String(error) }),
    );
  });
}
