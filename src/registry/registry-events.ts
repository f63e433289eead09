import { EventEmitter } from 'node:events';
import { Injectable } from '@nestjs/common';

export type RegistryEventType = 'created' | 'updated' | 'deleted';

export interface RegistryEvent {
  type: RegistryEventType;
  serverId: string;
  slug: string;
}

/**
 * Tells the rest of the process that the registry changed (discovery syncs a
 * new server, the prober forgets a deleted one). In-process only; replicas
 * learn of changes through their own periodic work until a shared bus exists.
 */
@Injectable()
export class RegistryEvents {
  private readonly emitter = new EventEmitter();

  emit(event: RegistryEvent): void {
    this.emitter.emit('change', event);
  }

  /** Returns a function that removes the listener. */
  on(listener: (event: RegistryEvent) => void): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }
}
