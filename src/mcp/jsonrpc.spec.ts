import { parseBody, isRepeatable } from './jsonrpc';

describe('isRepeatable', () => {
  const request = (method: string, id: number | string = 1) => ({ jsonrpc: '2.0', id, method });

  it('takes reads, initialize and ping as harmless to send twice', () => {
    for (const method of ['initialize', 'ping', 'tools/list', 'resources/read', 'prompts/get', 'completion/complete']) {
      expect([method, isRepeatable(request(method))]).toEqual([method, true]);
    }
  });

  it('sends a tool call, or a method it does not know, at most once', () => {
    expect(isRepeatable(request('tools/call'))).toBe(false);
    expect(isRepeatable(request('tools/call', 'string-id'))).toBe(false);
    expect(isRepeatable(request('acme/launch'))).toBe(false);
    // Names are exact: no prefix or case folding.
    expect(isRepeatable(request('Tools/list'))).toBe(false);
    expect(isRepeatable(request('tools/list/extra'))).toBe(false);
  });

  it('takes notifications and answers to the upstream as harmless, and a batch by its worst message', () => {
    expect(isRepeatable({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } })).toBe(true);
    expect(isRepeatable({ jsonrpc: '2.0', id: 'sampling-1', result: { content: [] } })).toBe(true);
    expect(isRepeatable({ jsonrpc: '2.0', id: 3, error: { code: -1, message: 'no' } })).toBe(true);
    expect(isRepeatable([request('ping'), request('tools/list', 2)])).toBe(true);
    expect(isRepeatable([request('ping'), request('tools/call', 2)])).toBe(false);
    expect(isRepeatable([])).toBe(true);
  });

  it('does not vouch for what is not a message', () => {
    expect(isRepeatable(null)).toBe(false);
    expect(isRepeatable('tools/list')).toBe(false);
    expect(isRepeatable([request('ping'), 42])).toBe(false);
  });
});

describe('parseBody', () => {
  const request = (id: number | string, method = 'ping') => ({ jsonrpc: '2.0', id, method });

  it('refuses a batch in which two requests share an id, 1 and "1" included', () => {
    for (const body of [
      [request(9, 'tools/call'), request(9)],
      [request('a'), request(2), request('a', 'tools/call')],
      [request(1), request('1')],
    ]) {
      expect(parseBody(body)).toEqual({ problem: expect.stringMatching(/is used twice$/), code: -32600 });
    }
  });

  it('takes distinct ids, notifications, and answers to the upstream that share a request id', () => {
    const answer = { jsonrpc: '2.0', id: 1, result: {} };
    const notification = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } };
    expect(parseBody([request(1), request(2), answer, notification, notification])).toMatchObject({ batch: true });
    expect(parseBody([answer, answer])).toMatchObject({ batch: true });
    expect(parseBody(request(1))).toMatchObject({ batch: false });
  });
});
