import type { ServerResponse } from 'node:http';
import type { ProblemDetails } from '../common/problem-details.filter';
import { requestIdOf, sendRpcProblem } from './rpc-problem';

/** A response that keeps what is sent, answering a request whose body was `body`. */
function responseTo(body: unknown): { res: ServerResponse; sent: { status?: number; text?: string } } {
  const sent: { status?: number; text?: string } = {};
  const res = {
    req: { body },
    headersSent: false,
    statusCode: 200,
    setHeader: () => undefined,
    end(text: string) {
      sent.status = res.statusCode;
      sent.text = text;
    },
  };
  return { res: res as unknown as ServerResponse, sent };
}

const problem = (status: number, title: string, detail: string, errorId?: string): ProblemDetails => ({
  type: 'urn:mcp-gateway:problem:x',
  title,
  status,
  detail,
  code: 'server_error',
  ...(errorId ? { errorId } : {}),
});

describe('sendRpcProblem', () => {
  it("answers an internal fault -32603 'Internal error' with its error id only, to the request's id", () => {
    const { res, sent } = responseTo({ jsonrpc: '2.0', id: 'a1', method: 'ping' });
    sendRpcProblem(problem(500, 'Internal server error', 'an internal error occurred', 'e-1'), res);
    expect([sent.status, JSON.parse(sent.text!)]).toEqual([
      500,
      { jsonrpc: '2.0', id: 'a1', error: { code: -32603, message: 'Internal error', data: { errorId: 'e-1' } } },
    ]);
  });

  it('answers another 5xx -32603 saying what it is, and a refusal -32600', () => {
    const outage = responseTo(undefined);
    sendRpcProblem(problem(503, 'Service unavailable', 'the session store does not answer'), outage.res);
    expect([outage.sent.status, JSON.parse(outage.sent.text!)]).toEqual([
      503,
      {
        jsonrpc: '2.0',
        id: null,
        error: { code: -32603, message: 'Service unavailable: the session store does not answer' },
      },
    ]);
    const refused = responseTo({ jsonrpc: '2.0', id: 4, method: 'ping' });
    sendRpcProblem(problem(404, 'Not found', 'no resource is served at this path'), refused.res);
    expect([refused.sent.status, JSON.parse(refused.sent.text!)]).toEqual([
      404,
      { jsonrpc: '2.0', id: 4, error: { code: -32600, message: 'Not found: no resource is served at this path' } },
    ]);
  });
});

describe('requestIdOf', () => {
  it.each([
    [{ jsonrpc: '2.0', id: 7, method: 'ping' }, 7],
    [{ jsonrpc: '2.0', id: 'x', method: 'ping' }, 'x'],
    [{ jsonrpc: '2.0', method: 'notifications/initialized' }, null],
    [{ jsonrpc: '2.0', id: { not: 'an id' }, method: 'ping' }, null],
    [[{ jsonrpc: '2.0', id: 1, method: 'ping' }], null],
    [undefined, null],
    ['text', null],
  ])('reads %j as %j', (body, id) => {
    expect(requestIdOf(body)).toEqual(id);
  });
});
