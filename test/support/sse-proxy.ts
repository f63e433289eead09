import * as http from 'node:http';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/**
 * An HTTP relay in front of an MCP upstream that counts the server-to-client
 * event streams (GET, `text/event-stream`) currently open through it, so a
 * test can wait until a client really listens before the upstream notifies.
 */
export class SseProxy {
  private openStreamCount = 0;
  private readonly server = http.createServer((req, res) => this.relay(req, res));
  private listener!: LoopbackListener;

  private constructor(private readonly target: URL) {}

  static async start(targetUrl: string): Promise<SseProxy> {
    const proxy = new SseProxy(new URL(targetUrl));
    proxy.listener = await listenOnLoopback(proxy.server);
    return proxy;
  }

  /** The proxy's URL, with the upstream's path. */
  get url(): string {
    return `${this.listener.url}${this.target.pathname}`;
  }

  get openStreams(): number {
    return this.openStreamCount;
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }

  private relay(req: http.IncomingMessage, res: http.ServerResponse): void {
    const upstream = http.request(
      {
        host: this.target.hostname,
        port: this.target.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.target.host },
      },
      (answer) => {
        const stream =
          req.method === 'GET' &&
          answer.statusCode === 200 &&
          String(answer.headers['content-type']).startsWith('text/event-stream');
        if (stream) {
          this.openStreamCount++;
          res.once('close', () => this.openStreamCount--);
        }
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        res.flushHeaders();
        answer.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }
}
