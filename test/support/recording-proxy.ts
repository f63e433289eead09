import * as http from 'node:http';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/** An HTTP relay in front of an upstream that remembers the headers of every request it passed on. */
export class RecordingProxy {
  readonly requests: http.IncomingHttpHeaders[] = [];
  private readonly server: http.Server;
  private listener!: LoopbackListener;

  private constructor(target: URL) {
    this.server = http.createServer((req, res) => {
      this.requests.push(req.headers);
      const relay = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      relay.on('error', () => res.writeHead(502).end());
      req.pipe(relay);
    });
  }

  static async start(target: string): Promise<RecordingProxy> {
    const proxy = new RecordingProxy(new URL(target));
    proxy.listener = await listenOnLoopback(proxy.server);
    return proxy;
  }

  /** The same path as the target, through this relay. */
  urlFor(target: string): string {
    const url = new URL(target);
    url.port = String(this.listener.port);
    return url.toString();
  }

  /** Authorization headers seen so far, in order. */
  get authorizations(): (string | undefined)[] {
    return this.requests.map((headers) => headers.authorization);
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }
}
