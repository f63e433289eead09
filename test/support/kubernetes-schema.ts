import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import type { Manifest } from './kustomize';

/**
 * Manifest validation against a pinned Kubernetes API, in two parts:
 *
 * - schema: the JSON schemas (types, required fields, enums, formats such as
 *   int32 and quantities) through kubernetes-models' Ajv validators;
 * - unknown fields: JSON schemas of Kubernetes objects allow any extra field,
 *   while the API server refuses them (strict field validation, the default of
 *   `kubectl apply`). TypeScript's excess-property check against the same
 *   package's types finds them: a misspelt or misplaced field fails here.
 *
 * The Kubernetes release is kubernetes-models' (devDependency, pinned exactly).
 */

const ROOT = path.join(__dirname, '..', '..');
const MODELS_ROOT = path.dirname(require.resolve('kubernetes-models/package.json'));
export const KUBERNETES_MODELS_VERSION = (
  JSON.parse(readFileSync(path.join(MODELS_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;

/** Schema errors of each manifest, in order (an empty list when it is valid). */
export function schemaErrors(manifests: Manifest[]): string[][] {
  const output = execFileSync(process.execPath, [path.join(__dirname, 'kubernetes-schema-check.cjs')], {
    input: JSON.stringify(manifests),
    encoding: 'utf8',
    timeout: 60_000,
  });
  return JSON.parse(output) as string[][];
}

/** Fields that the Kubernetes API does not know, one message per manifest that has any. */
export function unknownFieldErrors(manifests: Manifest[]): string[] {
  // A virtual ES module beside the tests, so that kubernetes-models resolves from node_modules.
  const file = path.join(ROOT, 'test', '.manifests.generated.mts');
  const lines = manifests.map((manifest, index) => {
    const module = `kubernetes-models/${manifest.apiVersion}/${manifest.kind}`;
    return `export const m${index}: import('${module}').I${manifest.kind} = ${JSON.stringify(manifest)};`;
  });
  const source = lines.join('\n');
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, languageVersion, ...rest) =>
    name === file ? ts.createSourceFile(name, source, languageVersion) : getSourceFile(name, languageVersion, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);

  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => diagnostic.file?.fileName === file)
    .map((diagnostic) => {
      const line = diagnostic.file?.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line ?? -1;
      const manifest = manifests[line];
      const name = manifest ? `${manifest.kind} ${manifest.metadata.name}` : `line ${line}`;
      return `${name}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ')}`;
    });
}
