import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

/**
 * `/metrics` under `serve --workers N`: whichever worker a scrape reaches, it answers for all of them. The worker
 * asks the primary, the primary asks every worker for its registry (as JSON, over the cluster's IPC channel) and
 * sums what they say (prom-client's aggregation: counters and histograms add up; a gauge says how it combines).
 * A scrape answered by one worker alone would have its counters jump between the workers' own totals, which
 * Prometheus reads as resets.
 */

/** Worker → primary: every worker's metrics, please. Primary → worker: the answer, or why there is none. */
const SCRAPE = 'mcp-gateway:scrape';
const SCRAPED = 'mcp-gateway:scraped';
/** Primary → worker: your registry, please. Worker → primary: here it is. */
const REPORT = 'mcp-gateway:report';
const REPORTED = 'mcp-gateway:reported';

/** How long the primary waits for each worker's registry. */
export const REPORT_TIMEOUT_MS = 5_000;
/** How long a worker waits for the primary's answer: long enough to hear why a scrape failed. */
export const SCRAPE_TIMEOUT_MS = REPORT_TIMEOUT_MS + 1_000;

type Metrics = MetricObjectWithValues<MetricValue<string>>[];

interface Message {
  type?: unknown;
  id?: unknown;
  text?: unknown;
  error?: unknown;
  metrics?: unknown;
}

/**
 * The worker's side: answers the primary's requests for `registry`, and returns the scrape that asks the primary
 * for every worker's metrics. Call once per worker process.
 */
export function clusterScrape(registry: Registry, timeoutMs = SCRAPE_TIMEOUT_MS): () => Promise<string> {
  const scrapes = new PendingAnswers<string>();
  // A worker on its way out may have lost its channel to the primary: nothing to send then.
  const send = (message: Message & { metrics?: Metrics }): void => {
    if (process.connected) process.send?.(message);
  };
  process.on('message', (message: Message) => {
    if (message?.type === REPORT) {
      registry.getMetricsAsJSON().then(
        (metrics) => send({ type: REPORTED, id: message.id, metrics }),
        (error: unknown) => send({ type: REPORTED, id: message.id, error: String(error) }),
      );
    } else if (message?.type === SCRAPED && typeof message.id === 'number') {
      scrapes.answer(message.id, typeof message.text === 'string' ? message.text : new Error(errorOf(message)));
    }
  });
  return () => {
    if (!process.connected) return Promise.reject(new Error('this worker has lost its channel to the primary'));
    return scrapes.ask(
      (id) => send({ type: SCRAPE, id }),
      timeoutMs,
      `the primary did not answer within ${timeoutMs} ms`,
    );
  };
}

/**
 * The primary's side: a worker's scrape request is answered with every live worker's metrics, summed. A worker
 * that does not report within the time limit fails the scrape (Prometheus then counts it as failed) rather than
 * leaving its numbers out, which would look like a reset of every counter.
 */
export class ClusterMetrics {
  private readonly reports = new PendingAnswers<Metrics>();

  constructor(
    private readonly workers: () => Worker[],
    private readonly timeoutMs = REPORT_TIMEOUT_MS,
  ) {}

  /** Listens to the workers' messages until the returned function is called. */
  start(): () => void {
    const onMessage = (worker: Worker, message: Message): void => {
      if (message?.type === REPORTED && typeof message.id === 'number') {
        this.reports.answer(
          message.id,
          Array.isArray(message.metrics) ? (message.metrics as Metrics) : new Error(errorOf(message)),
        );
      } else if (message?.type === SCRAPE) {
        this.scrape().then(
          (text) => worker.isConnected() && worker.send({ type: SCRAPED, id: message.id, text }),
          (error: unknown) =>
            worker.isConnected() &&
            worker.send({
              type: SCRAPED,
              id: message.id,
              error: error instanceof Error ? error.message : String(error),
            }),
        );
      }
    };
    cluster.on('message', onMessage);
    return () => cluster.off('message', onMessage);
  }

  /** Every live worker's metrics, summed, in the Prometheus text format. */
  async scrape(): Promise<string> {
    const live = this.workers().filter((worker) => worker.isConnected());
    const reports = await Promise.all(live.map((worker) => this.report(worker)));
    return AggregatorRegistry.aggregate(reports).metrics();
  }

  private report(worker: Worker): Promise<Metrics> {
    return this.reports.ask(
      (id) => worker.send({ type: REPORT, id }),
      this.timeoutMs,
      `worker process ${worker.process.pid} did not report its metrics within ${this.timeoutMs} ms`,
    );
  }
}

/**
 * Questions sent over the IPC channel, each under an id of its own, waiting for their answer (or an error in its
 * place) until a time limit: both sides of a scrape ask this way.
 */
class PendingAnswers<T> {
  private readonly waiting = new Map<number, (answer: T | Error) => void>();
  private nextId = 0;

  /** Sends the question with `send(id)`; rejects with `timedOut` if no answer comes within `timeoutMs`. */
  ask(send: (id: number) => void, timeoutMs: number, timedOut: string): Promise<T> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(timedOut));
      }, timeoutMs);
      this.waiting.set(id, (answer) => {
        clearTimeout(timer);
        if (answer instanceof Error) reject(answer);
        else resolve(answer);
      });
      send(id);
    });
  }

  /** The answer to question `id`; one that came too late, or twice, is dropped. */
  answer(id: number, answer: T | Error): void {
    const waiting = this.waiting.get(id);
    this.waiting.delete(id);
    waiting?.(answer);
  }
}

function errorOf(message: Message): string {
  return typeof message.error === 'string' ? message.error : 'no metrics came back';
}
