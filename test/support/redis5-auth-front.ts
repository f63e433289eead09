import type * as net from 'node:net';
import { TcpRelay } from './tcp-relay';

/**
 * A relay in front of a real Redis that answers AUTH as Redis 5 and older do: they know no users, and refuse AUTH
 * with a user name and a password ("wrong number of arguments"). Only a connection's first command is looked at
 * (clients authenticate first); everything else is relayed.
 */
export class Redis5AuthFront extends TcpRelay {
  /** How many AUTH commands with a user name it refused. */
  refused = 0;

  protected relay(client: net.Socket): void {
    const { upstream } = this.connectTarget(client);
    upstream.pipe(client);
    let head = Buffer.alloc(0);
    const first = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const command = firstCommand(head);
      if (!command) return;
      client.off('data', first);
      let rest = head;
      if (command.args.length === 3 && command.args[0]!.toLowerCase() === 'auth') {
        this.refused += 1;
        client.write("-ERR wrong number of arguments for 'auth' command\r\n");
        rest = head.subarray(command.length);
      }
      upstream.write(rest);
      client.pipe(upstream);
    };
    client.on('data', first);
  }
}

/** The first RESP command in `data` (an array of bulk strings) and its length in bytes; undefined until complete. */
function firstCommand(data: Buffer): { args: string[]; length: number } | undefined {
  const line = (from: number): { text: string; next: number } | undefined => {
    const end = data.indexOf('\r\n', from);
    return end < 0 ? undefined : { text: data.toString('latin1', from, end), next: end + 2 };
  };
  const header = line(0);
  if (!header?.text.startsWith('*')) return undefined;
  const args: string[] = [];
  let at = header.next;
  for (let index = 0; index < Number(header.text.slice(1)); index++) {
    const size = line(at);
    if (!size?.text.startsWith('$')) return undefined;
    const end = size.next + Number(size.text.slice(1));
    if (data.length < end + 2) return undefined;
    args.push(data.toString('utf8', size.next, end));
    at = end + 2;
  }
  return { args, length: at };
}
