import * as http from 'node:http';
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

/** What `plainRequest` resolves with: the status, the headers and the whole body as text. */
export interface PlainAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/**
 * One request by Node's own HTTP client, on a connection of its own, so that the method, the path, the headers and
 * the body (its framing too) are exactly what the test says: supertest adds and sets headers of its own.
 */
export function plainRequest(
  url: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<PlainAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
