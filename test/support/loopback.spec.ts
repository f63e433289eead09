import * as net from 'node:net';
import { holdFreeLoopbackPort, reach, secondHoldOf } from './loopback';

describe('holdFreeLoopbackPort', () => {
  it('gives a port that refuses connections and stays bound until a service listens on it', async () => {
    const held = await holdFreeLoopbackPort();
    const service = net.createServer((socket) => socket.end('hello'));
    try {
      expect(await reach(held.port)).toBe('ECONNREFUSED');
      // Bound, so that no other process takes it: a second hold of it is refused.
      expect(await secondHoldOf(held.port)).toBe('EADDRNOTAVAIL');

      // A service (SO_REUSEADDR, as Node and redis-server set it) listens on it while it is held.
      await new Promise<void>((resolve, reject) => {
        service.once('error', reject);
        service.listen(held.port, '127.0.0.1', resolve);
      });
      held.release();
      expect(await reach(held.port)).toBe('hello');
    } finally {
      held.release();
      await new Promise<void>((resolve) => service.close(() => resolve()));
    }
  });
});
