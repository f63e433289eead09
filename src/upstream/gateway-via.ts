import { createHash } from 'node:crypto';

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

/** HTTP 508 Loop Detected (RFC 5842): the answer to a request of this gateway's that came back to it. */
export const LOOP_DETECTED = 508;

/** The `Via` entry of this gateway's upstream requests: they are HTTP/1.1 requests (undici, the SDK's fetch). */
export function viaEntryOf(publicUrl: string): string {
  return `1.1 ${viaPseudonymOf(publicUrl)}`;
}
