import * as http from 'node:http';
import { listenOnLoopback, type LoopbackListener } from './loopback';

/**
 * A loopback HTTP proxy that adds `Authorization` to every request it passes
 * on, for clients that cannot send a token (the conformance suite). Everything
 * else, `Host` included, reaches the gateway as the client sent it, and
 * responses stream back unbuffered.
 */
export class TokenProxy {
  private constructor(private readonly listener: LoopbackListener) {}

  get port(): number {
    return this.listener.port;
  }

  static async start(target: string, token: string): Promise<TokenProxy> {
    const upstream = new URL(target);
    const server = http.createServer((req, res) => {
      const forwarded = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, authorization: `Bearer ${token}` },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forwarded.on('error', () => res.destroy());
      res.on('close', () => forwarded.destroy());
      req.pipe(forwarded);
    });
    return new TokenProxy(await listenOnLoopback(server));
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }
}
