/**
 * The load generator of `npm run bench`, in a process of its own so that its CPU is neither the gateway's nor
 * the upstream's. It speaks MCP Streamable HTTP itself over Node's `http` with one keep-alive connection per
 * worker: each worker initializes one session (initialize, notifications/initialized), then sends `tools/call`
 * (or `tools/list`) with ids unique within its session, one at a time, and checks every answer (HTTP status,
 * JSON-RPC result, the echoed text). The MCP SDK client was not used: it tops out near 450 calls/s on these
 * machines (FINDINGS.md), below what the gateway is to be measured at.
 *
 * Input: one JSON `LoadSpec` as the only argument. Output on stdout, one JSON line each:
 * `{"event":"measuring"}` when warm-up ends (the caller starts its CPU readings), then `{"event":"done",…}`
 * with a `LoadResult` once the last call measured has answered.
 */
import * as http from 'node:http';

export interface LoadSpec {
  /** `mcp`: Streamable HTTP with a session per worker; `rest`: the REST bridge, one JSON POST per call. */
  protocol: 'mcp' | 'rest';
  url: string;
  /** `tools/call` of `tool` with `{ text }`, or `tools/list` (MCP only), expecting `expectTools` tools. */
  method: 'tools/call' | 'tools/list';
  tool?: string;
  expectTools?: number;
  token?: string;
  concurrency: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  calls: number;
  errors: number;
  /** Errors while warming up (not measured, but reported: they must be 0 too). */
  warmupErrors: number;
  /** The first few errors, to say what went wrong. */
  errorSamples: string[];
  /** From the first measured call's start to the last one's answer. */
  elapsedMs: number;
  callsPerSecond: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

const PROTOCOL_VERSION = '2025-06-18';
const MAX_ERROR_SAMPLES = 5;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** `performance.now()` when the last byte arrived: a call's latency ends here, before the answer is checked. */
  receivedAt: number;
}

function send(
  agent: http.Agent,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers }, (res) => {
      // Bytes as they come; decoded once all have arrived, like parsing, on the client's time.
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const receivedAt = performance.now();
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, receivedAt });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The JSON-RPC message answering `id` in a JSON or SSE body. */
function messageFor(answer: Answer, id: number): Record<string, unknown> {
  const type = answer.headers['content-type'] ?? '';
  const candidates = type.startsWith('text/event-stream')
    ? answer.body
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).trim())
    : [answer.body];
  for (const text of candidates) {
    const value = JSON.parse(text) as Record<string, unknown> | Record<string, unknown>[];
    for (const message of Array.isArray(value) ? value : [value]) if (message.id === id) return message;
  }
  throw new Error(`no answer to id ${id} in HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
}

/** One worker: a connection (and for MCP a session) of its own. */
class Worker {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly url: URL;
  private sessionId?: string;
  private nextId = 0;

  constructor(
    private readonly spec: LoadSpec,
    private readonly index: number,
  ) {
    this.url = new URL(spec.url);
  }

  private headers(): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    };
    if (this.spec.token) headers.authorization = `Bearer ${this.spec.token}`;
    if (this.sessionId) {
      headers['mcp-session-id'] = this.sessionId;
      headers['mcp-protocol-version'] = PROTOCOL_VERSION;
    }
    return headers;
  }

  /** When the last answer arrived (see `Answer.receivedAt`). */
  receivedAt = 0;

  private async rpc(method: string, params: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = ++this.nextId;
    const answer = await send(
      this.agent,
      this.url,
      'POST',
      this.headers(),
      JSON.stringify({ jsonrpc: '2.0', id, method, params }),
    );
    this.receivedAt = answer.receivedAt;
    if (answer.status !== 200) throw new Error(`${method}: HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
    if (method === 'initialize') {
      const session = answer.headers['mcp-session-id'];
      if (typeof session === 'string') this.sessionId = session;
    }
    const message = messageFor(answer, id);
    if (message.error !== undefined) throw new Error(`${method}: ${JSON.stringify(message.error)}`);
    return message.result as Record<string, unknown>;
  }

  async open(): Promise<void> {
    if (this.spec.protocol !== 'mcp') return;
    await this.rpc('initialize', {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'mcp-gateway-bench', version: '1.0.0' },
    });
    const answer = await send(
      this.agent,
      this.url,
      'POST',
      this.headers(),
      JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
    );
    if (answer.status !== 202) throw new Error(`notifications/initialized: HTTP ${answer.status}`);
  }

  /** One call, checked: throws on any answer but the expected one. */
  async call(): Promise<void> {
    const text = `bench ${this.index}:${this.nextId + 1}`;
    if (this.spec.protocol === 'rest') {
      const answer = await send(this.agent, this.url, 'POST', this.headers(), JSON.stringify({ text }));
      this.receivedAt = answer.receivedAt;
      if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.body.slice(0, 200)}`);
      this.nextId++;
      checkEcho(JSON.parse(answer.body) as Record<string, unknown>, text);
      return;
    }
    if (this.spec.method === 'tools/list') {
      const result = await this.rpc('tools/list', {});
      const tools = result.tools as unknown[] | undefined;
      if (tools?.length !== this.spec.expectTools) {
        throw new Error(`tools/list: ${tools?.length} tools, expected ${this.spec.expectTools}`);
      }
      return;
    }
    checkEcho(await this.rpc('tools/call', { name: this.spec.tool, arguments: { text } }), text);
  }

  async close(): Promise<void> {
    if (this.sessionId) await send(this.agent, this.url, 'DELETE', this.headers()).catch(() => undefined);
    this.agent.destroy();
  }
}

function checkEcho(result: Record<string, unknown>, text: string): void {
  const content = result.content as { text?: unknown }[] | undefined;
  if (result.isError === true || content?.[0]?.text !== text) {
    throw new Error(`unexpected result: ${JSON.stringify(result).slice(0, 200)}`);
  }
}

/** Nearest rank. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function emit(value: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export async function runLoad(spec: LoadSpec, onMeasuring: () => void = () => undefined): Promise<LoadResult> {
  const workers = Array.from({ length: spec.concurrency }, (_, index) => new Worker(spec, index));
  await Promise.all(workers.map((worker) => worker.open()));
  let latencies = new Float64Array(1 << 16);
  let calls = 0;
  let errors = 0;
  let warmupErrors = 0;
  const errorSamples: string[] = [];
  let measuringFrom = Number.POSITIVE_INFINITY;
  let lastAnswer = 0;
  let stopped = false;

  const record = (started: number, ms: number): void => {
    if (started < measuringFrom) return;
    if (calls === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[calls++] = ms;
  };
  // Warm-up ends once its time is up and every worker has had an answer; measuring ends once its time is up and
  // at least two calls per worker were measured (at high concurrency on a slow path, a short window would
  // otherwise hold no call that both started and ended in it), or after a hard bound.
  let warmedUp = 0;
  const minCalls = spec.concurrency * 2;
  let wake: () => void = () => undefined;
  const loop = async (worker: Worker): Promise<void> => {
    let first = true;
    while (!stopped) {
      const started = performance.now();
      try {
        await worker.call();
        // Until the answer arrived: parsing and checking it (milliseconds for a 1.5 MB tools/list) is the client's time.
        record(started, worker.receivedAt - started);
        lastAnswer = worker.receivedAt;
      } catch (error) {
        if (started < measuringFrom) warmupErrors++;
        else errors++;
        if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(String(error));
      }
      if (first) {
        first = false;
        warmedUp++;
      }
      wake();
    }
  };
  const until = async (condition: () => boolean, minMs: number, maxMs: number): Promise<void> => {
    const from = performance.now();
    await new Promise((resolve) => setTimeout(resolve, minMs));
    while (!condition() && performance.now() - from < maxMs) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  };
  const running = Promise.all(workers.map(loop));
  await until(() => warmedUp === workers.length, spec.warmupMs, spec.warmupMs + 60_000);
  onMeasuring();
  measuringFrom = performance.now();
  await until(() => calls + errors >= minCalls, spec.durationMs, spec.durationMs * 10 + 60_000);
  stopped = true;
  await running;
  await Promise.all(workers.map((worker) => worker.close()));

  const sorted = latencies.subarray(0, calls).sort();
  const elapsedMs = Math.max(lastAnswer - measuringFrom, 1);
  let sum = 0;
  for (const ms of sorted) sum += ms;
  return {
    calls,
    errors,
    warmupErrors,
    errorSamples,
    elapsedMs,
    callsPerSecond: (calls * 1000) / elapsedMs,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    mean: calls ? sum / calls : Number.NaN,
  };
}

if (require.main === module) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  runLoad(spec, () => emit({ event: 'measuring' })).then(
    (result) => emit({ event: 'done', result }),
    (error: unknown) => {
      emit({ event: 'failed', message: error instanceof Error ? error.message : String(error) });
      process.exitCode = 1;
    },
  );
}
