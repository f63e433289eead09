import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** The package root: `src/..` under ts, `dist/..` when built. */
export const PACKAGE_ROOT = path.resolve(__dirname, '..');

export const GATEWAY_VERSION = (
  JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
