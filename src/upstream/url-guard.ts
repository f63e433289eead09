import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { UpstreamError } from './upstream-error';

/** Why an upstream URL is refused, or undefined when it may be used. */
export type UrlVerdict = { allowed: true } | { allowed: false; reason: string };

export interface UrlPolicy {
  /** Hosts, IPs or CIDRs allowed despite the default refusals; `loopback` stands for 127.0.0.0/8, ::1 and localhost. */
  allowedHosts: readonly string[];
  /** Hosts, IPs or CIDRs always refused. */
  deniedHosts: readonly string[];
  /** This gateway's MCP endpoint (PUBLIC_URL + MCP_PREFIX): a URL at or under it would have the gateway relay to itself. */
  gatewayMcpUrl?: string;
}

export type Resolver = (hostname: string) => Promise<string[]>;

const DEFAULT_REFUSED: { range: string; why: string }[] = [
  { range: '127.0.0.0/8', why: 'loopback' },
  { range: '::1/128', why: 'loopback' },
  { range: '169.254.0.0/16', why: 'link-local (cloud metadata lives here)' },
  { range: 'fe80::/10', why: 'link-local' },
  { range: 'fd00:ec2::254/128', why: 'cloud metadata' },
  { range: '100.100.100.200/32', why: 'cloud metadata' },
  { range: '0.0.0.0/8', why: 'unspecified' },
  { range: '::/128', why: 'unspecified' },
];
const REFUSED_HOSTNAMES = new Map([
  ['metadata.google.internal', 'cloud metadata'],
  ['metadata', 'cloud metadata'],
]);

/**
 * Checks upstream URLs against SSRF: http(s) only, no credentials in the URL,
 * and no address that reaches the gateway's own host or the cloud's metadata
 * service unless the operator allowed it. Hostnames are resolved and every
 * address they resolve to is checked.
 */
export class UrlGuard {
  private readonly allowed: HostList;
  private readonly denied: HostList;
  private readonly gatewayMcp?: URL;

  constructor(
    policy: UrlPolicy,
    private readonly resolve: Resolver = defaultResolver,
  ) {
    this.allowed = new HostList(policy.allowedHosts.flatMap(expandKeyword));
    this.denied = new HostList(policy.deniedHosts);
    if (policy.gatewayMcpUrl !== undefined) this.gatewayMcp = new URL(policy.gatewayMcpUrl);
  }

  async check(rawUrl: string): Promise<UrlVerdict> {
    let url: URL;
    try {
      url = new URL(rawUrl);
    } catch {
      return refuse('is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return refuse('must use http or https');
    if (url.username || url.password) return refuse('must not carry credentials; use the server auth settings');
    if (this.isGatewayMcp(url)) {
      return refuse(`is this gateway's own MCP endpoint (PUBLIC_URL and MCP_PREFIX): it would relay to itself`);
    }
    const hostname = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const named = this.checkName(hostname);
    if (!named.allowed) return named;

    let addresses: string[];
    if (isIP(hostname)) {
      addresses = [hostname];
    } else {
      try {
        addresses = await this.resolve(hostname);
      } catch {
        // Unresolvable now (not deployed yet, or another network): nothing to check. Connecting re-checks.
        return { allowed: true };
      }
    }
    return this.checkAddresses(hostname, addresses);
  }

  /**
   * The addresses `hostname` resolves to now, every one of them allowed, for a connection about to be opened: the
   * socket connects to what was checked here, so a name that answered a public address when the URL was checked
   * and answers the metadata service's now (DNS rebinding) is refused. Fails with the resolver's error, or with an
   * UpstreamError (`refused_url`) naming the address and the rule.
   */
  async resolveForConnection(hostname: string): Promise<string[]> {
    const name = hostname.replace(/^\[|\]$/g, '').toLowerCase();
    const named = this.checkName(name);
    if (!named.allowed) throw new UpstreamError('refused_url', `the upstream ${named.reason}`);
    const addresses = isIP(name) ? [name] : await this.resolve(name);
    const verdict = this.checkAddresses(name, addresses);
    if (!verdict.allowed) throw new UpstreamError('refused_url', `the upstream ${verdict.reason}`);
    return addresses;
  }

  /**
   * At or under PUBLIC_URL + MCP_PREFIX, as the URL parser writes it (host case, default port and dot segments
   * do not matter). Other ways back to the gateway (a loopback address, another name, an encoded path) are found
   * when the gateway's own request comes back (src/upstream/gateway-via.ts).
   */
  private isGatewayMcp(url: URL): boolean {
    const own = this.gatewayMcp;
    if (own === undefined || url.origin !== own.origin) return false;
    return url.pathname === own.pathname || url.pathname.startsWith(`${own.pathname}/`);
  }

  private checkName(hostname: string): UrlVerdict {
    if (this.denied.hasName(hostname)) return refuse(`host ${hostname} is denied by configuration`);
    const refusedName = REFUSED_HOSTNAMES.get(hostname) ?? (hostname === 'localhost' ? 'loopback' : undefined);
    if (refusedName && !this.allowed.hasName(hostname)) return refuse(`host ${hostname} is ${refusedName}`);
    return { allowed: true };
  }

  private checkAddresses(hostname: string, addresses: readonly string[]): UrlVerdict {
    const hostnameAllowed = this.allowed.hasName(hostname);
    for (const raw of addresses) {
      const address = embeddedIpv4(raw) ?? raw;
      if (this.denied.hasAddress(address)) return refuse(`address ${address} is denied by configuration`);
      if (hostnameAllowed || this.allowed.hasAddress(address)) continue;
      const why = defaultRefusal(address);
      if (why) return refuse(`address ${address} is ${why}; allow it with UPSTREAM_ALLOWED_HOSTS`);
    }
    return { allowed: true };
  }
}

function refuse(reason: string): UrlVerdict {
  return { allowed: false, reason };
}

async function defaultResolver(hostname: string): Promise<string[]> {
  const results = await lookup(hostname, { all: true, verbatim: true });
  return results.map((result) => result.address);
}

function expandKeyword(entry: string): string[] {
  return entry.trim().toLowerCase() === 'loopback' ? ['127.0.0.0/8', '::1/128', 'localhost'] : [entry];
}

/** IPv6 prefixes (their first six groups) whose last 32 bits are an IPv4 address the packets go to. */
const IPV4_CARRYING_PREFIXES = new Set([
  '0,0,0,0,0,65535', // ::ffff:a.b.c.d, IPv4-mapped
  '0,0,0,0,65535,0', // ::ffff:0:a.b.c.d, IPv4-translated (SIIT)
  '0,0,0,0,0,0', // ::a.b.c.d, IPv4-compatible (deprecated, still routed by some stacks)
  '100,65435,0,0,0,0', // 64:ff9b::a.b.c.d, the well-known NAT64 prefix
]);

/**
 * The IPv4 address an IPv6 address carries, for every purpose here: `::ffff:127.0.0.1`, `::ffff:0:127.0.0.1`,
 * `::127.0.0.1` and `64:ff9b::127.0.0.1` all reach 127.0.0.1 (the URL parser writes them in hex, `::ffff:7f00:1`).
 * Undefined for any other address, and for `::` and `::1`, which are IPv6's own unspecified and loopback addresses.
 */
export function embeddedIpv4(address: string): string | undefined {
  if (isIP(address) !== 6) return undefined;
  const groups = ipv6Groups(address);
  const high = groups[6] ?? 0;
  const low = groups[7] ?? 0;
  if (!IPV4_CARRYING_PREFIXES.has(groups.slice(0, 6).join(','))) return undefined;
  if (groups.slice(0, 7).every((group) => group === 0) && low <= 1) return undefined;
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/** The eight 16-bit groups of a valid IPv6 address (zone dropped, a dotted IPv4 tail turned into two groups). */
function ipv6Groups(address: string): number[] {
  let text = address.replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string | undefined): number[] =>
    part ? part.split(':').map((group) => parseInt(group, 16)) : [];
  const [head, tail] = text.split('::');
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

const defaultBlockList = (() => {
  const list = new Map<string, BlockList>();
  for (const { range, why } of DEFAULT_REFUSED) {
    const blocks = list.get(why) ?? new BlockList();
    addRange(blocks, range);
    list.set(why, blocks);
  }
  return list;
})();

function defaultRefusal(address: string): string | undefined {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  for (const [why, blocks] of defaultBlockList) {
    if (blocks.check(address, family)) return why;
  }
  return undefined;
}

function addRange(blocks: BlockList, entry: string): boolean {
  const [address, prefix] = entry.split('/');
  const family = isIP(address ?? '');
  if (!address || family === 0) return false;
  const type = family === 6 ? 'ipv6' : 'ipv4';
  if (prefix === undefined) blocks.addAddress(address, type);
  else blocks.addSubnet(address, Number(prefix), type);
  return true;
}

/** A configured list of hostnames, addresses and CIDRs. */
class HostList {
  private readonly names = new Set<string>();
  private readonly blocks = new BlockList();

  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw
        .trim()
        .toLowerCase()
        .replace(/^\[|\]$/g, '');
      if (!entry) continue;
      if (!addRange(this.blocks, entry)) this.names.add(entry);
    }
  }

  hasName(hostname: string): boolean {
    return this.names.has(hostname);
  }

  hasAddress(address: string): boolean {
    return this.blocks.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
  }
}
