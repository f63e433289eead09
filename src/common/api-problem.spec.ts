import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DESCRIPTIONS, ProblemDetailsDto } from './api-problem';
import { DomainError, ERROR_CODES } from './domain-error';

describe('the stable error codes, as documented', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

  it('are the ones the README lists under "Errors and logs", every one of them', () => {
    const errors = readme.slice(readme.indexOf('## Errors and logs')).replace(/\s+/g, ' ');
    const listed = /a stable `code` \(([^]*?)\) and, for validation/.exec(errors)?.[1] ?? '';
    const codes = [...listed.matchAll(/`([a-z_]+)`/g)].map((match) => match[1]);
    expect(codes.sort()).toEqual([...ERROR_CODES].sort());
  });

  it('are each named in the OpenAPI description of `code`, with the status that carries them', () => {
    const metadata = (
      ProblemDetailsDto as unknown as { _OPENAPI_METADATA_FACTORY(): Record<string, unknown> }
    )._OPENAPI_METADATA_FACTORY();
    const description = String((metadata.code as { description?: string }).description);
    for (const code of ERROR_CODES) {
      expect(description).toContain(code);
      const status = DomainError.statusOf(code);
      if (status >= 500 && status !== 500) expect(DESCRIPTIONS[status]).toContain(`\`${code}\``);
    }
    expect(DESCRIPTIONS[504]).toContain('upstream_timeout');
  });
});
