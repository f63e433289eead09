import { ConfigError, loadConfig } from '../../src/config/config';

/** The lines `loadConfig` refuses `env` with; throws when it accepts it. */
export function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}
