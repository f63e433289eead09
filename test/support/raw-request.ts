import * as net from 'node:net';

/**
 * Sends `target` as the request target of one request line, byte for byte, over a plain socket, and resolves with
 * the status code and the whole answer. HTTP clients (supertest, fetch) parse a URL first and drop its fragment
 * (`#…`); a client writing its own request line does not, and Node hands such a target through in `req.url`.
 */
export function rawRequest(
  baseUrl: string,
  method: string,
  target: string,
  headers: Record<string, string> = {},
  body = '',
): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(baseUrl);
  const head = [
    `${method} ${target} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    'Connection: close',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(`${head.join('\r\n')}\r\n\r\n${body}`));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text)?.[1];
      if (status === undefined) reject(new Error(`not an HTTP answer: ${text.slice(0, 200)}`));
      else resolve({ status: Number(status), text });
    });
  });
}
