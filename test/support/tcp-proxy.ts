import type * as net from 'node:net';
import { TcpRelay } from './tcp-relay';

/**
 * A TCP relay in front of a real service, so a test can take the service
 * "down" and bring it back without touching the service other tests use.
 */
export class TcpProxy extends TcpRelay {
  private refusing = false;

  /**
   * Cuts the open connections and closes each new one once accepted, as a crashed service would, keeping the port
   * until `resume()` (`refuse()` refuses them instead).
   */
  cutOff(): void {
    this.refusing = true;
    this.cutAll();
  }

  /** Relays new connections again after `cutOff()`. */
  resume(): void {
    this.refusing = false;
  }

  protected relay(client: net.Socket): void {
    if (this.refusing) return void client.destroy();
    const { upstream } = this.connectTarget(client);
    client.pipe(upstream).pipe(client);
  }
}

export function hostPortOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port) };
}

export function withHostPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.hostname = '127.0.0.1';
  parsed.port = String(port);
  return parsed.toString();
}
