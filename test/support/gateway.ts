import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { type RunningGateway, startGateway } from '../../src/bootstrap';
import { type EnvSource, loadConfig } from '../../src/config/config';
import { createLogger } from '../../src/logging/logger';
import { LogCapture } from './log-capture';
import { POSTGRES_URL, REDIS_URL } from './services';

export { LogCapture };

export type Profile = 'embedded' | 'services';

/** Both ways the gateway runs: bare (PGlite, in-process store) and on this machine's PostgreSQL and Redis. */
export const PROFILES: Profile[] = ['embedded', 'services'];

export function profileEnv(profile: Profile): EnvSource {
  return profile === 'services' ? { DATABASE_URL: POSTGRES_URL, REDIS_URL } : {};
}

export interface TestGateway {
  gateway: RunningGateway;
  url: string;
  logs: LogCapture;
  dataDir: string;
  close(): Promise<void>;
}

/**
 * Starts the real gateway in this process on a free port. Each call gets its
 * own DATA_DIR unless one is given (PGlite's first start of a directory takes seconds).
 */
export async function startTestGateway(profile: Profile, env: EnvSource = {}): Promise<TestGateway> {
  const ownDir = env.DATA_DIR === undefined;
  const dataDir = env.DATA_DIR ?? mkdtempSync(path.join(tmpdir(), 'mcp-gateway-test-'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    // Background loops stay off unless a test turns them on: they would reach every server other tests left behind.
    DISCOVERY_INTERVAL_MS: '0',
    HEALTH_PROBE_INTERVAL_MS: '0',
    ...profileEnv(profile),
    ...env,
  });
  const logs = new LogCapture();
  const logger = createLogger({ logLevel: 'info' }, logs.stream);
  const gateway = await startGateway(config, { logger });
  return {
    gateway,
    url: gateway.url,
    logs,
    dataDir,
    close: async () => {
      await gateway.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
