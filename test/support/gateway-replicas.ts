import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ServeProcess } from './cli';

/** One `mcp-gateway serve` process of a replicated deployment. */
export interface Replica {
  process: ServeProcess;
  url: string;
  dataDir: string;
}

/**
 * Starts `count` gateway processes on free loopback ports with the same
 * environment (a shared DATABASE_URL and REDIS_URL make them one deployment).
 * They start together, so they also race to apply migrations.
 */
export async function startReplicas(count: number, env: Record<string, string>): Promise<Replica[]> {
  const started = Array.from({ length: count }, () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'mcp-gateway-replica-'));
    return {
      dataDir,
      process: new ServeProcess(['--port', '0', '--host', '127.0.0.1'], { ...env, DATA_DIR: dataDir }),
    };
  });
  try {
    const urls = await Promise.all(started.map((replica) => replica.process.ready()));
    return started.map((replica, index) => ({ ...replica, url: urls[index]! }));
  } catch (error) {
    await stopReplicas(started);
    throw error;
  }
}

/** SIGTERM to every replica, then waits for each to exit; returns their exit codes. */
export async function stopReplicas(replicas: Pick<Replica, 'process' | 'dataDir'>[]): Promise<(number | null)[]> {
  const codes = await Promise.all(
    replicas.map(async (replica) => {
      replica.process.signal('SIGTERM');
      return replica.process.exited;
    }),
  );
  for (const replica of replicas) rmSync(replica.dataDir, { recursive: true, force: true });
  return codes;
}
