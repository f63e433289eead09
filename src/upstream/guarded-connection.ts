import type { LookupAddress, LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';
import type { UrlGuard } from './url-guard';

/**
 * A `lookup` for `net.connect`/`tls.connect` that resolves through the URL policy: the socket gets only addresses
 * the policy allows, the very ones checked, so a name cannot answer an allowed address when its URL is checked and
 * the metadata service's when the connection is opened (DNS rebinding). It runs once per new connection, never per
 * request (connections are kept alive). An IP literal in the URL is not looked up by Node: the URL check refused it.
 */
export function guardedLookup(guard: UrlGuard): LookupFunction {
  return (hostname, options, callback) => {
    guard.resolveForConnection(hostname).then(
      (addresses) => {
        const wanted = familyOf(options);
        const entries: LookupAddress[] = addresses
          .map((address) => ({ address, family: isIP(address) }))
          .filter((entry) => wanted === 0 || entry.family === wanted);
        const first = entries[0];
        if (first === undefined) {
          const error: NodeJS.ErrnoException = new Error(`${hostname} has no IPv${wanted} address`);
          error.code = 'ENOTFOUND';
          callback(error, '');
        } else if (options.all) {
          callback(null, entries);
        } else {
          callback(null, first.address, first.family);
        }
      },
      (error: unknown) => callback(error as NodeJS.ErrnoException, ''),
    );
  };
}

function familyOf(options: LookupOptions): 0 | 4 | 6 {
  const { family } = options;
  if (family === 4 || family === 'IPv4') return 4;
  if (family === 6 || family === 'IPv6') return 6;
  return 0;
}

/** An undici Agent whose connections go only to addresses the URL policy allows (`guardedLookup`). */
export function guardedAgent(guard: UrlGuard, options: Omit<Agent.Options, 'connect'> = {}): Agent {
  return new Agent({ ...options, connect: { lookup: guardedLookup(guard) } });
}
