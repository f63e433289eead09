import { createHash } from 'node:crypto';
import { UpstreamError } from './upstream-error';

/**
 * The pseudonym this gateway names itself by in the `Via` header (RFC 9110 §7.6.3) of every request it sends an
 * upstream: `mcp-gateway-` and 16 hex digits of the SHA-256 of PUBLIC_URL. Replicas of one deployment (and the
 * workers of `serve --workers`) share PUBLIC_URL, since their OAuth metadata names it, so they share the pseudonym
 * and count as one gateway; a gateway with another PUBLIC_URL has another. An MCP request that arrives carrying it
 * came from this gateway, through an upstream URL that leads back here (`mcpEdgeCheck` refuses it): relayed, it
 * would open one more request at every hop until a rate limit or a timeout ended the chain.
 */
export function viaPseudonymOf(publicUrl: string): string {
  const href = new URL(publicUrl).href.replace(/\/+$/, '');
  return `mcp-gateway-${createHash('sha256').update(href).digest('hex').slice(0, 16)}`;
}

const PSEUDONYM = /^mcp-gateway-[0-9a-f]{16}$/;

/**
 * The status of the answer to a request whose `Via` already holds this gateway's entry: 400, a client error ("deceptive
 * request routing", RFC 9110 §15.5.1), since the pseudonym is no secret and any client can send it; a 5xx (508 Loop
 * Detected, as it was) let a client's header make the gateway report a fault of its own, and made a gateway in front
 * count it against the server's circuit breaker. The gateway that sent it knows the refusal by LOOP_HEADER instead.
 */
export const LOOP_REFUSED = 400;

/** The header of a loop refusal (LOOP_REFUSED) naming the pseudonym of the gateway that found its own entry. */
export const LOOP_HEADER = 'mcp-gateway-loop';

/**
 * The longest incoming `Via` (every line of it, as Node joins them) a request under MCP_PREFIX may carry; a longer one
 * is refused with 431. A gateway's entry takes 34 characters with its separator, a CDN's some 60: this is some thirty
 * gateways, far more than a real chain, and keeps a header that every hop appends to from growing to kilobytes.
 */
export const MAX_INCOMING_VIA = 1_024;

/** The `Via` entry of this gateway's upstream requests: they are HTTP/1.1 requests (undici, the SDK's fetch). */
export function viaEntryOf(publicUrl: string): string {
  return `1.1 ${viaPseudonymOf(publicUrl)}`;
}

/**
 * The `Via` of a request sent on behalf of one that arrived with `incoming`: this gateway's entry appended to it, as a
 * proxy does (RFC 9110 §7.6.3), so that a loop through other gateways reaches the first one again with its own entry.
 */
export function viaAfter(incoming: string | undefined, entry: string): string {
  const before = incoming?.trim();
  return before ? `${before}, ${entry}` : entry;
}

/** A request of the gateway's that an upstream gateway refused as a loop (LOOP_REFUSED with LOOP_HEADER). */
export class LoopRefused extends UpstreamError {
  constructor(
    /** The gateway that found its own entry. */
    readonly gateway: string,
    /** Whether that is this gateway (its entry the last of the `Via` sent), not one the request came through. */
    readonly ours: boolean,
  ) {
    const where = ours ? 'this gateway' : `gateway ${gateway}, which this request had passed through`;
    super(
      'http_status',
      `the upstream answered HTTP ${LOOP_REFUSED} Loop Detected: the server's URL leads back to ${where}`,
      LOOP_REFUSED,
    );
    this.name = 'LoopRefused';
  }
}

/**
 * The failure an upstream's answer with `status` and LOOP_HEADER `named` means for a request sent with `sentVia`, or
 * undefined when it is no loop refusal this request can have met: the refusing gateway must be named in the `Via`
 * sent. Its own entry is the last one there (`viaAfter`), so the loop leads back to this gateway when it is the last;
 * an upstream that names it can only make its own failure read so.
 */
export function loopRefusalOf(
  status: number,
  named: string | undefined,
  sentVia: string | undefined,
): LoopRefused | undefined {
  if (status !== LOOP_REFUSED || named === undefined || sentVia === undefined) return undefined;
  const gateway = named.trim();
  if (!PSEUDONYM.test(gateway)) return undefined;
  const entries = sentVia.split(',').map((entry) => entry.trim().split(/\s+/)[1]);
  if (!entries.includes(gateway)) return undefined;
  return new LoopRefused(gateway, entries.at(-1) === gateway);
}
