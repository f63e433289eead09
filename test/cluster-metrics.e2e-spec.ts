import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { ClusterMetrics } from '../src/cluster/cluster-metrics';
import { parsePrometheusText, valueOf } from './support/prometheus-text';

/**
 * `/metrics` under `serve --workers N`, its cluster side alone (src/cluster/cluster-metrics.ts): real worker
 * processes (test/support/metrics-worker.ts) and this process as their primary. `serve --workers 2` itself is
 * tested in test/cli-workers.e2e-spec.ts.
 */
describe('cluster metrics', () => {
  const workers: Worker[] = [];
  let metrics: ClusterMetrics;
  let stop: () => void;

  async function fork(env: Record<string, string>): Promise<Worker> {
    cluster.setupPrimary({
      exec: 'test/support/metrics-worker.ts',
      execArgv: ['-r', './bench/swc-register.cjs'],
      silent: true,
    });
    const worker = cluster.fork(env);
    workers.push(worker);
    await once(worker, 'online');
    return worker;
  }

  /** Has `worker` scrape through the primary; resolves with the text, or the error it got. */
  async function scrapeFrom(worker: Worker): Promise<{ scraped?: string; failed?: string }> {
    const answer = new Promise<{ scraped?: string; failed?: string }>((resolve) => {
      // The worker's reports to the primary come through here too.
      const onMessage = (message: { scraped?: string; failed?: string }): void => {
        if (message.scraped === undefined && message.failed === undefined) return;
        worker.off('message', onMessage);
        resolve(message);
      };
      worker.on('message', onMessage);
    });
    worker.send('scrape');
    return answer;
  }

  beforeAll(() => {
    metrics = new ClusterMetrics(() => workers.filter((worker) => !worker.isDead()), 1_000);
    stop = metrics.start();
  });

  afterAll(async () => {
    stop();
    await Promise.all(
      workers.map(async (worker) => {
        if (worker.isDead()) return;
        const exited = once(worker, 'exit');
        worker.kill();
        await exited;
      }),
    );
  });

  it('sums every worker’s counters, for the primary and for a worker that asks it', async () => {
    const first = await fork({ CALLS: '2' });
    await fork({ CALLS: '3' });
    // A worker's listener may come a moment after it is online: ask until both have reported.
    let text = '';
    for (let attempt = 0; attempt < 50; attempt++) {
      text = await metrics.scrape().catch(() => '');
      if (text !== '') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(valueOf(parsePrometheusText(text), 'test_calls_total')).toBe(5);

    const answer = await scrapeFrom(first);
    expect(answer.failed).toBeUndefined();
    expect(valueOf(parsePrometheusText(answer.scraped ?? ''), 'test_calls_total')).toBe(5);
  });

  it('fails the scrape, naming the worker, when one does not report, rather than leave its numbers out', async () => {
    const silent = await fork({ CALLS: '7', SILENT: '1' });
    await expect(metrics.scrape()).rejects.toThrow(
      `worker process ${silent.process.pid} did not report its metrics within 1000 ms`,
    );
    const answer = await scrapeFrom(workers[0]!);
    expect(answer.scraped).toBeUndefined();
    expect(answer.failed).toContain(`worker process ${silent.process.pid} did not report`);

    // Once it is gone, the scrape is whole again.
    const exited = once(silent, 'exit');
    silent.kill();
    await exited;
    expect(valueOf(parsePrometheusText(await metrics.scrape()), 'test_calls_total')).toBe(5);
  });
});
