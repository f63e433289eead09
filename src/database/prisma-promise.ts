/** Prisma's transaction a query runs in: a batch (`$transaction([...])`) or an interactive one (`itx`). */
interface Transaction {
  kind: string;
}

/** What Prisma runs when the query is first asked for its result. */
type Callback = (transaction?: Transaction) => unknown;

/** A query as Prisma hands it out: a thenable that runs the query once asked. */
export interface PrismaPromiseLike {
  spec: unknown;
  then: Promise<unknown>['then'];
  catch: Promise<unknown>['catch'];
  finally: Promise<unknown>['finally'];
  requestTransaction(transaction: Transaction): Promise<unknown>;
  [Symbol.toStringTag]: string;
}

/**
 * What every Prisma query returns before it is awaited, made as Prisma makes it but with its operation (`spec`)
 * as a plain property instead of a getter.
 *
 * Prisma builds each of these as an object literal with a getter. V8 keeps a literal's accessors outside the young
 * generation, so the getter, the closure scope it shares with the query's result promise, and the result itself
 * stayed reachable from there through every minor collection until the next full one: a 30-row `findMany` had
 * 36 KB of its rows promoted to the old generation per query, against 2.7 KB with this (standalone loop,
 * `--trace-gc-nvp`; Node 20 and 24 alike). Every registry read then fed full collections that stalled requests.
 *
 * Everything else is as Prisma's own: the query starts on the first `then`, `catch` or `finally` and runs once
 * outside a transaction (or inside an interactive one); a batch transaction asks for it with `requestTransaction`.
 * Interactive transactions' clients keep Prisma's factory. `test/prisma-promise.e2e-spec.ts` says when a Prisma
 * upgrade stops using this one.
 */
export function createPrismaPromise(callback: Callback, spec?: unknown): PrismaPromiseLike {
  let once: Promise<unknown> | undefined;
  const run = (transaction?: Transaction): Promise<unknown> => {
    try {
      if (transaction === undefined || transaction.kind === 'itx') return (once ??= promiseOf(callback(transaction)));
      return promiseOf(callback(transaction));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  };
  return {
    spec,
    then: (onfulfilled, onrejected) => run().then(onfulfilled, onrejected),
    catch: (onrejected) => run().catch(onrejected),
    finally: (onfinally) => run().finally(onfinally),
    requestTransaction: (transaction) => {
      const started = run(transaction) as Promise<unknown> & Partial<Pick<PrismaPromiseLike, 'requestTransaction'>>;
      return started.requestTransaction ? started.requestTransaction(transaction) : started;
    },
    [Symbol.toStringTag]: 'PrismaPromise',
  };
}

function promiseOf(value: unknown): Promise<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then === 'function'
    ? (value as Promise<unknown>)
    : Promise.resolve(value);
}
