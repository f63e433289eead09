import * as http from 'node:http';

const PROTOCOL_VERSION = '2025-06-18';

/** The headers of a raw MCP request with a bearer token, in a session when `sessionId` is given. */
export function mcpHeaders(token: string, sessionId?: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': PROTOCOL_VERSION,
    ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
  };
}

/** A session opened with a bare initialize (and `notifications/initialized`) at `url`: its id. */
export async function initializeRaw(url: string, token: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: mcpHeaders(token),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    }),
  });
  await res.text();
  const sessionId = res.headers.get('mcp-session-id');
  if (res.status !== 200 || !sessionId) throw new Error(`initialize at ${url} answered ${res.status}`);
  const initialized = await fetch(url, {
    method: 'POST',
    headers: mcpHeaders(token, sessionId),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await initialized.text();
  return sessionId;
}

/** A session's GET event stream held open; `ended` turns true when the server ends it. */
export async function openEventStream(
  url: string,
  token: string,
  sessionId: string,
): Promise<{ readonly ended: boolean; close: () => void }> {
  const state = { ended: false };
  const req = http.get(url, { headers: { ...mcpHeaders(token, sessionId), accept: 'text/event-stream' } });
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', reject);
  });
  if (res.statusCode !== 200) throw new Error(`GET ${url} answered ${res.statusCode}`);
  res.resume();
  res.once('close', () => (state.ended = true));
  return {
    get ended() {
      return state.ended;
    },
    close: () => req.destroy(),
  };
}
