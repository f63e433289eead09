import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { endWithEvent, startSse, writeEvent } from './http-replies';

/** A server that answers every request with `handle`, and a GET to it whose response headers and body it records. */
async function answer(
  handle: (res: http.ServerResponse) => void,
): Promise<{ headersAt: number; startedAt: number; body: string; contentType?: string }> {
  const server = http.createServer((_req, res) => handle(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const startedAt = performance.now();
    return await new Promise((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, agent: false }, (res) => {
          const headersAt = performance.now();
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ headersAt, startedAt, body, contentType: res.headers['content-type'] }));
        })
        .on('error', reject);
    });
  } finally {
    server.close();
  }
}

describe('SSE answers', () => {
  afterEach(() => jest.restoreAllMocks());

  it('show their headers after a short wait when no event comes, then carry the events written later', async () => {
    const result = await answer((res) => {
      startSse(res);
      setTimeout(() => endWithEvent(res, { data: '{"late":true}' }), 300);
    });
    expect(result.contentType).toBe('text/event-stream');
    // The headers came with the wait, well before the event.
    expect(result.headersAt - result.startedAt).toBeLessThan(250);
    expect(result.body).toBe('data: {"late":true}\n\n');
  });

  it('stop the headers timer at the first event, written or ending the answer', async () => {
    for (const first of [writeEvent, endWithEvent]) {
      const timers: unknown[] = [];
      const setTimer = jest.spyOn(global, 'setTimeout');
      const clearTimer = jest.spyOn(global, 'clearTimeout');
      const result = await answer((res) => {
        startSse(res);
        timers.push(setTimer.mock.results.at(-1)?.value);
        first(res, { data: '1' });
        if (!res.writableEnded) res.end();
      });
      expect(result.body).toBe('data: 1\n\n');
      expect(timers[0]).toBeDefined();
      expect(clearTimer).toHaveBeenCalledWith(timers[0]);
      jest.restoreAllMocks();
    }
  });
});
