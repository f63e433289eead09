import { Held } from '../common/held';
import type { KeyValueStore } from '../redis/key-value-store';
import type { JsonRpcMessage, JsonRpcNotification, JsonRpcRequest } from './jsonrpc';

const CANCEL_CHANNEL = 'mcp:cancel';

/**
 * Requests of aggregate sessions that an upstream is working on, so that a
 * client's `notifications/cancelled` stops them, whichever replica it reaches
 * (the cancellation is published to all of them).
 */
export class InFlightRequests {
  /** Boxed: what a request's cancel function reaches (its whole relay) must not outlive the request. */
  private readonly cancels = new Map<string, Held<(reason?: string) => void>>();
  private unsubscribe?: () => Promise<void>;

  constructor(private readonly store: KeyValueStore) {}

  /**
   * A cancellation published while this replica's subscription was interrupted is lost, and its request runs to its
   * end, as one whose cancellation came too late does: MCP allows a cancellation to go unheeded, and nothing records
   * which went by to catch up on.
   */
  async start(): Promise<void> {
    this.unsubscribe = await this.store.subscribe(CANCEL_CHANNEL, (message) => {
      const { key, reason } = JSON.parse(message) as { key: string; reason?: string };
      this.cancels.get(key)?.value?.(reason);
    });
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
    this.cancels.clear();
  }

  /** Registers how to stop a request; returns the function that forgets it once it is done. */
  track(sessionId: string, requestId: string | number, cancel: (reason?: string) => void): () => void {
    const key = keyOf(sessionId, requestId);
    const held = new Held(cancel);
    this.cancels.set(key, held);
    return () => {
      held.release();
      if (this.cancels.get(key) === held) this.cancels.delete(key);
    };
  }

  /**
   * Stops every request of the session that a `notifications/cancelled` among `messages` names; undefined when none
   * does, so that a call, which names none, awaits nothing (an async function's promise and turn on every call).
   */
  cancelNamedIn(sessionId: string, messages: JsonRpcMessage[]): Promise<void> | undefined {
    return messages.some(isCancellation) ? this.cancelAllNamedIn(sessionId, messages) : undefined;
  }

  private async cancelAllNamedIn(sessionId: string, messages: JsonRpcMessage[]): Promise<void> {
    for (const message of messages) {
      if (isCancellation(message)) {
        const reason = message.params?.reason;
        await this.cancel(sessionId, message.params?.requestId, typeof reason === 'string' ? reason : undefined);
      }
    }
  }

  async cancel(sessionId: string, requestId: unknown, reason?: string): Promise<void> {
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return;
    const key = keyOf(sessionId, requestId);
    const local = this.cancels.get(key)?.value;
    if (local) local(reason);
    else await this.store.publish(CANCEL_CHANNEL, JSON.stringify({ key, reason }));
  }
}

function isCancellation(message: JsonRpcMessage): message is JsonRpcRequest | JsonRpcNotification {
  return 'method' in message && message.method === 'notifications/cancelled';
}

function keyOf(sessionId: string, requestId: string | number): string {
  return `${sessionId}\0${typeof requestId}\0${requestId}`;
}
