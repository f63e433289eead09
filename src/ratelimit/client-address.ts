import { isIP } from 'node:net';

/**
 * The key the per-IP limit counts a client under: its IPv4 address, or the
 * /64 network of an IPv6 one (a single host commonly holds a whole /64, so
 * counting addresses would let it rotate past the limit). A port a proxy
 * forwarded with the address (`198.51.100.7:50001`, `[2001:db8::7]:50001`, as
 * Azure Application Gateway does) is left out: counted with it, every new
 * connection of the client would have had a budget of its own.
 */
export function clientAddressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  let family = isIP(address);
  if (family === 0) {
    address = withoutPort(address);
    family = isIP(address);
  }
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (family !== 6) return address;
  return `${expandIpv6(address).slice(0, 4).join(':')}::/64`;
}

/** `a.b.c.d:port` and `[v6]:port` (or `[v6]`) without the port and brackets; anything else as it is. */
function withoutPort(address: string): string {
  const match = /^(?:(\d+\.\d+\.\d+\.\d+):\d{1,5}|\[([^\]]+)\](?::\d{1,5})?)$/.exec(address);
  const host = match?.[1] ?? match?.[2];
  return host !== undefined && isIP(host) !== 0 ? host : address;
}

function expandIpv6(address: string): string[] {
  const [head = '', tail] = address.split('%', 1)[0]!.split('::', 2);
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail stands for two groups.
  const last = right.length ? right : left;
  if (last.length && last[last.length - 1]!.includes('.')) {
    const [a, b, c, d] = last.pop()!.split('.').map(Number);
    last.push(((a! << 8) | b!).toString(16), ((c! << 8) | d!).toString(16));
  }
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((group) =>
    group.toLowerCase().replace(/^0+(?=.)/, ''),
  );
}
