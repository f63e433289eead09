import type * as http from 'node:http';
import * as net from 'node:net';

/** A server listening on a loopback port the system chose. */
export interface LoopbackListener {
  /** `http://127.0.0.1:{port}`, without a path. */
  readonly url: string;
  readonly port: number;
  /** Closes the server and every connection still open on it. */
  stop(): Promise<void>;
}

/** Starts `server` listening on 127.0.0.1, on a port the system chooses. */
export async function listenOnLoopback(server: http.Server): Promise<LoopbackListener> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A loopback port nothing listens on, held (`holdPort`) until `release()`: for a service another process starts on
 * it, or for a client to find no service there (ECONNREFUSED). A port found free and let go of at once could be
 * taken by another suite's process before the service bound it (EADDRINUSE) or while the client tried it, and the
 * client then reached that process; held, the system gives it to no socket that asks for a free port, while a
 * service that sets SO_REUSEADDR (Node, redis-server) can listen on it before `release()`.
 * A port found free is let go of for the moment it takes to hold it: if another socket took it meanwhile, the hold
 * fails and another port is tried.
 */
export async function holdFreeLoopbackPort(): Promise<HeldPort> {
  for (let attempt = 1; ; attempt++) {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    try {
      return await holdPort(port);
    } catch (error) {
      if (attempt === 5) throw error;
    }
  }
}

/** A loopback port kept bound, with nothing listening on it, until `release()`. */
export interface HeldPort {
  readonly port: number;
  release(): void;
}

/**
 * Keeps `port` on 127.0.0.1 bound with nothing listening, so that a connection to it is refused (ECONNREFUSED) as by
 * a stopped service, while the system gives the port to no socket that asks for a free one: a port let go of may be
 * taken by another suite's process before the service listens on it again (EADDRINUSE), and its clients then reach
 * that process.
 * Node binds a port without listening only for a connection: a socket connected to itself (TCP's simultaneous open)
 * holds it. The service may listen on the port again before `release()`, so that the port is never free.
 */
export async function holdPort(port: number): Promise<HeldPort> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1', localPort: port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { port, release: () => void socket.destroy() };
}

/**
 * The port of a service that a test takes down and brings back: held (`holdPort`) while the service is down, so
 * that no other process takes it meanwhile, and let go of once it listens again or is stopped for good.
 */
export class PortHold {
  private held?: HeldPort;

  /** Holds `port` until `release()`; nothing to do while it is held. */
  async hold(port: number): Promise<void> {
    this.held ??= await holdPort(port);
  }

  release(): void {
    this.held?.release();
    this.held = undefined;
  }
}

/** What a connection to `port` meets: what the service behind it wrote, or the connection's error code. */
export function reach(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('end', () => resolve(text));
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

/** What a second hold of `port` meets: its error code, or undefined when it was held (and let go of at once). */
export async function secondHoldOf(port: number): Promise<string | undefined> {
  try {
    (await holdPort(port)).release();
    return undefined;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code;
  }
}
