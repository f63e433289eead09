import { type DynamicModule, Global, Module } from '@nestjs/common';
import { ClusterSignals } from './cluster-signals';
import { KEY_VALUE_STORE, type KeyValueStore } from './key-value-store';

@Global()
@Module({})
export class RedisModule {
  /** The store is connected before Nest starts and closed after it stops. */
  static forRoot(store: KeyValueStore): DynamicModule {
    return {
      module: RedisModule,
      providers: [{ provide: KEY_VALUE_STORE, useValue: store }, ClusterSignals],
      exports: [KEY_VALUE_STORE, ClusterSignals],
    };
  }
}
