import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONFIG_VARIABLES, envSchema } from './config.schema';

describe('configuration documentation', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

  it('declares every schema key exactly once', () => {
    expect(CONFIG_VARIABLES.map((variable) => variable.key).sort()).toEqual(Object.keys(envSchema.shape).sort());
  });

  it.each(CONFIG_VARIABLES.map((variable) => [variable.key, variable] as const))(
    'has a README table row for %s that matches its declaration',
    (key, variable) => {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${key}\` |`));
      expect(row).toBeDefined();
      expect(row).toContain(variable.defaultText);
      expect(row).toContain(variable.secret ? '| yes |' : '| no |');
    },
  );
});
