import { Inject, Injectable } from '@nestjs/common';
import { KEY_VALUE_STORE, type KeyValueStore } from './key-value-store';

/** Something every replica should react to at once rather than at its next poll. */
export type ClusterSignal = 'catalog:stale';

const CHANNEL_PREFIX = 'signal:';

/** Named, payload-free signals to every replica (this one included), over the store's pub/sub. */
@Injectable()
export class ClusterSignals {
  constructor(@Inject(KEY_VALUE_STORE) private readonly store: KeyValueStore) {}

  async raise(signal: ClusterSignal): Promise<void> {
    await this.store.publish(CHANNEL_PREFIX + signal, '1');
  }

  /**
   * Returns a function that stops listening. A signal that may have been raised while this replica could not hear it
   * (its subscription interrupted) counts as raised: a signal says only "look again", which is never wrong.
   */
  listen(signal: ClusterSignal, listener: () => void): Promise<() => Promise<void>> {
    return this.store.subscribe(CHANNEL_PREFIX + signal, listener, listener);
  }
}
