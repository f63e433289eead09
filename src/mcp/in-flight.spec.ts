import { MemoryStore } from '../redis/memory-store';
import { InFlightRequests } from './in-flight';
import type { JsonRpcMessage } from './jsonrpc';

describe('InFlightRequests.cancelNamedIn', () => {
  const call: JsonRpcMessage = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo' } };
  const cancelled = (requestId: unknown): JsonRpcMessage => ({
    jsonrpc: '2.0',
    method: 'notifications/cancelled',
    params: { requestId, reason: 'no longer needed' },
  });

  it('has nothing to wait for when no message is a cancellation, and cancels nothing', () => {
    const inFlight = new InFlightRequests(new MemoryStore());
    const cancel = jest.fn();
    inFlight.track('session-1', 7, cancel);
    expect(inFlight.cancelNamedIn('session-1', [call])).toBeUndefined();
    expect(inFlight.cancelNamedIn('session-1', [])).toBeUndefined();
    expect(cancel).not.toHaveBeenCalled();
  });

  it("stops the session's requests the cancellations name, a batch's too, and no other session's", async () => {
    const inFlight = new InFlightRequests(new MemoryStore());
    const seven = jest.fn();
    const eight = jest.fn();
    const elsewhere = jest.fn();
    inFlight.track('session-1', 7, seven);
    inFlight.track('session-1', 'eight', eight);
    inFlight.track('session-2', 7, elsewhere);
    await inFlight.cancelNamedIn('session-1', [call, cancelled(7), cancelled('eight')]);
    expect(seven).toHaveBeenCalledWith('no longer needed');
    expect(eight).toHaveBeenCalledWith('no longer needed');
    expect(elsewhere).not.toHaveBeenCalled();
  });

  it('publishes a cancellation of a request it does not hold, for the replica that does', async () => {
    const store = new MemoryStore();
    const published: string[] = [];
    await store.subscribe('mcp:cancel', (message) => published.push(message));
    const inFlight = new InFlightRequests(store);
    await inFlight.cancelNamedIn('session-1', [cancelled(9)]);
    expect(published.map((message) => JSON.parse(message) as unknown)).toEqual([
      { key: 'session-1\u0000number\u00009', reason: 'no longer needed' },
    ]);
  });
});
