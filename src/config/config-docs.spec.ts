import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONFIG_VARIABLES, clientEnvSchema, envSchema } from './config.schema';

describe('configuration documentation', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

  it('declares every schema key exactly once', () => {
    const keys = new Set([...Object.keys(envSchema.shape), ...Object.keys(clientEnvSchema.shape)]);
    expect(CONFIG_VARIABLES.map((variable) => variable.key).sort()).toEqual([...keys].sort());
  });

  // Rows of the README's configuration table, as [variable, default, secret, meaning] cells.
  const rows = readme
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) =>
      line
        .slice(1, -1)
        .split(' | ')
        .map((cell) => cell.trim()),
    );

  it.each(CONFIG_VARIABLES.map((variable) => [variable.key, variable] as const))(
    'has a README table row for %s that matches its declaration',
    (key, variable) => {
      const row = rows.find((cells) => cells[0] === `\`${key}\``);
      expect(row).toEqual([`\`${key}\``, variable.defaultText, variable.secret ? 'yes' : 'no', variable.description]);
    },
  );
});
