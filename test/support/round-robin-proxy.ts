import * as http from 'node:http';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/** One request the balancer passed on, and where. */
export interface BalancedRequest {
  /** Index of the replica that got it, in the order the targets were given (the next one when the first was down). */
  replica: number;
  method: string;
  path: string;
  sessionId?: string;
  /** The JSON-RPC methods of a POST body (responses from the client appear as `response`). */
  rpcMethods: string[];
  status?: number;
}

/** A server-to-client event stream (GET, `text/event-stream`) open through the balancer. */
export interface OpenStream {
  replica: number;
  path: string;
  sessionId?: string;
}

/**
 * A round-robin HTTP load balancer on a loopback port, with no stickiness:
 * every request, whatever connection it came on, goes to the next replica.
 * Request bodies are read (they are small JSON-RPC messages) so the balancer
 * can tell which replica served which method; answers stream back unbuffered.
 * A replica that refuses connections is skipped for that request.
 */
export class RoundRobinProxy {
  readonly requests: BalancedRequest[] = [];
  private readonly streams = new Set<OpenStream>();
  private readonly server = http.createServer((req, res) => this.relay(req, res));
  private listener!: LoopbackListener;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly targets: URL[];
  private next = 0;

  private constructor(targets: string[]) {
    this.targets = targets.map((target) => new URL(target));
  }

  static async start(targets: string[]): Promise<RoundRobinProxy> {
    if (targets.length === 0) throw new Error('a balancer needs at least one target');
    const proxy = new RoundRobinProxy(targets);
    proxy.listener = await listenOnLoopback(proxy.server);
    return proxy;
  }

  /** The balancer's URL for `path` (`/mcp`, `/mcp/{slug}`). */
  url(path: string): string {
    return `${this.listener.url}${path}`;
  }

  /** Requests each replica got that match `filter`, by replica index. */
  countByReplica(filter: (request: BalancedRequest) => boolean = () => true): number[] {
    const counts = this.targets.map(() => 0);
    for (const request of this.requests) if (filter(request)) counts[request.replica]! += 1;
    return counts;
  }

  /** Event streams currently open through the balancer. */
  openStreams(filter: (stream: OpenStream) => boolean = () => true): OpenStream[] {
    return [...this.streams].filter(filter);
  }

  async stop(): Promise<void> {
    await this.listener.stop();
    this.agent.destroy();
  }

  private relay(req: http.IncomingMessage, res: http.ServerResponse): void {
    const replica = this.next;
    this.next = (this.next + 1) % this.targets.length;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const sessionId = req.headers['mcp-session-id'];
      const record: BalancedRequest = {
        replica,
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        sessionId: typeof sessionId === 'string' ? sessionId : undefined,
        rpcMethods: rpcMethodsOf(body),
      };
      this.requests.push(record);
      this.forward(req, res, body, record, 1);
    });
  }

  /**
   * Passes the request to `record.replica`. A replica that refuses the
   * connection (its process is gone) never saw the request: the next one gets
   * it, as a load balancer's retry on connect errors does.
   */
  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    record: BalancedRequest,
    attempt: number,
  ): void {
    const target = this.targets[record.replica]!;
    const forwarded = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: target.host },
        agent: this.agent,
      },
      (answer) => {
        record.status = answer.statusCode;
        const stream =
          req.method === 'GET' &&
          answer.statusCode === 200 &&
          String(answer.headers['content-type']).startsWith('text/event-stream');
        if (stream) {
          const open: OpenStream = { replica: record.replica, path: record.path, sessionId: record.sessionId };
          this.streams.add(open);
          const closed = (): void => void this.streams.delete(open);
          answer.once('close', closed);
          res.once('close', closed);
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.flushHeaders();
        answer.pipe(res);
        // A replica that dies mid-answer: the client sees its response cut short, not a clean end.
        answer.once('close', () => {
          if (!answer.complete) res.destroy();
        });
      },
    );
    forwarded.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED' && !res.headersSent && attempt < this.targets.length) {
        record.replica = (record.replica + 1) % this.targets.length;
        this.forward(req, res, body, record, attempt + 1);
        return;
      }
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    // A client that went away takes its request along; a finished one leaves the connection for reuse.
    res.on('close', () => {
      if (!res.writableFinished) forwarded.destroy();
    });
    forwarded.end(body);
  }
}

function rpcMethodsOf(body: Buffer): string[] {
  if (body.length === 0) return [];
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    return (Array.isArray(value) ? value : [value]).map((message) => {
      const method = (message as { method?: unknown } | null)?.method;
      return typeof method === 'string' ? method : 'response';
    });
  } catch {
    return [];
  }
}
