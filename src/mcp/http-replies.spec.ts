import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { acceptableFor, endWithEvent, refuseUnknownProtocolVersion, startSse, writeEvent } from './http-replies';

/**
 * A server that answers every request with `handle`, and a GET to it; `onHeaders` runs when the client has the
 * response's headers (with the server's response). Resolves with the body and content type the client got.
 */
async function answer(
  handle: (res: http.ServerResponse) => void,
  onHeaders: () => void = () => undefined,
): Promise<{ body: string; contentType?: string; headers: http.IncomingHttpHeaders }> {
  const server = http.createServer((_req, res) => handle(res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    return await new Promise((resolve, reject) => {
      // An answer that never completes fails the test instead of holding it up.
      const stuck = setTimeout(() => reject(new Error('the answer did not complete within 10 s')), 10_000);
      http
        .get({ host: '127.0.0.1', port, agent: false }, (res) => {
          onHeaders();
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            clearTimeout(stuck);
            resolve({ body, contentType: res.headers['content-type'], headers: res.headers });
          });
        })
        .on('error', reject);
    });
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

describe('SSE answers', () => {
  afterEach(() => jest.restoreAllMocks());

  it('show their headers after a short wait when no event comes, then carry the events written later', async () => {
    // The event is written only once the client has the headers: without the wait's flush, it would never be.
    let answering: http.ServerResponse | undefined;
    const result = await answer(
      (res) => {
        answering = res;
        startSse(res);
      },
      () => endWithEvent(answering!, { data: '{"late":true}' }),
    );
    expect(result.contentType).toBe('text/event-stream');
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

  it('send an answer whose one event ends it with its length, and a longer one chunked', async () => {
    const single = await answer((res) => {
      startSse(res);
      endWithEvent(res, { data: '{"id":1,"result":{"text":"é"}}' });
    });
    expect(single.body).toBe('data: {"id":1,"result":{"text":"é"}}\n\n');
    // In bytes: "é" is two.
    expect(single.headers['content-length']).toBe(String(Buffer.byteLength(single.body)));
    expect(single.headers['transfer-encoding']).toBeUndefined();

    const several = await answer((res) => {
      startSse(res);
      writeEvent(res, { data: '{"method":"notifications/progress"}' });
      endWithEvent(res, { data: 'two\nlines' });
    });
    expect(several.body).toBe('data: {"method":"notifications/progress"}\n\ndata: two\ndata: lines\n\n');
    expect(several.headers['content-length']).toBeUndefined();
    expect(several.headers['transfer-encoding']).toBe('chunked');
  });
});

describe('acceptableFor', () => {
  const of = (accept?: string) =>
    acceptableFor({ headers: accept === undefined ? {} : { accept } } as http.IncomingMessage);

  it('reads which of JSON and an event stream the Accept header allows', () => {
    expect(of('application/json')).toEqual({ json: true, eventStream: false });
    expect(of('TEXT/Event-Stream ; charset=utf-8')).toEqual({ json: false, eventStream: true });
    expect(of('application/json, text/event-stream')).toEqual({ json: true, eventStream: true });
    expect(of('text/*, application/json;q=0.000')).toEqual({ json: false, eventStream: true });
    expect(of('application/json;q=0.5, text/event-stream;q=0.01')).toEqual({ json: true, eventStream: true });
    expect(of('application/*')).toEqual({ json: true, eventStream: false });
  });

  it('leaves both to a header that allows neither, a wildcard, or no header', () => {
    for (const accept of [undefined, '', '*/*', 'text/html', 'application/json;q=0', ',,;;']) {
      expect([accept, of(accept)]).toEqual([accept, { json: true, eventStream: true }]);
    }
  });

  it('reads each header anew, whichever came before it', () => {
    expect(of('application/json')).toEqual({ json: true, eventStream: false });
    expect(of('application/json')).toEqual({ json: true, eventStream: false });
    expect(of('text/event-stream')).toEqual({ json: false, eventStream: true });
    expect(of(undefined)).toEqual({ json: true, eventStream: true });
    expect(of('text/event-stream')).toEqual({ json: false, eventStream: true });
  });
});

describe('refuseUnknownProtocolVersion', () => {
  const asking = (version: string) =>
    ({ headers: { 'mcp-protocol-version': version } }) as unknown as http.IncomingMessage;

  it('takes the version the session agreed on though the gateway does not know it, and any it speaks', async () => {
    let refused: boolean[] = [];
    const { body } = await answer((res) => {
      refused = ['2099-01-01', '2025-06-18', '2098-01-01'].map((version) =>
        refuseUnknownProtocolVersion(asking(version), res, '2099-01-01'),
      );
    });
    expect(refused).toEqual([false, false, true]);
    expect(JSON.parse(body)).toMatchObject({
      error: {
        message: 'Bad Request: unsupported protocol version 2098-01-01',
        data: { supported: expect.arrayContaining(['2099-01-01', '2025-11-25']) as unknown },
      },
    });
  });
});
