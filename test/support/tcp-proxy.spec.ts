import * as net from 'node:net';
import { reach, secondHoldOf } from './loopback';
import { TcpProxy } from './tcp-proxy';

describe('TcpProxy', () => {
  it('refuses connections as a stopped service does while refused, keeping its port, and relays again on it', async () => {
    const service = net.createServer((socket) => socket.end('hello'));
    await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
    const proxy = new TcpProxy('127.0.0.1', (service.address() as net.AddressInfo).port);
    try {
      await proxy.start();
      const port = proxy.port;
      expect(await reach(port)).toBe('hello');

      await proxy.refuse();
      expect(await reach(port)).toBe('ECONNREFUSED');
      // Bound all the while, so that no other process takes it: a second hold of it is refused.
      expect(await secondHoldOf(port)).toBe('EADDRNOTAVAIL');

      await proxy.start();
      expect(proxy.port).toBe(port);
      expect(await reach(port)).toBe('hello');
    } finally {
      await proxy.stop();
      await new Promise<void>((resolve) => service.close(() => resolve()));
    }
  });
});
