import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';

/**
 * Renders a kustomization the way `kubectl kustomize` does, for the subset of
 * kustomize that k8s/ uses: `resources` (files and directories), `patches`
 * (RFC 6902 JSON patches with a kind/name target), `namespace` and `images`,
 * applied in kustomize's order (patches, namespace, images). Anything else in
 * a kustomization, or a patch that matches nothing, fails the render rather
 * than being skipped: extend this file when k8s/ needs more.
 *
 * Why not kustomize itself: the machines that run the tests have no kustomize
 * or kubectl binary and reach nothing but npm, and npm has no maintained
 * kustomize port. The subset is small enough to implement exactly.
 */

/** A Kubernetes object as read from YAML. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

export interface Rendered {
  manifests: Manifest[];
  /** Every file read (kustomizations and resources), as absolute paths. */
  files: string[];
}

interface Kustomization {
  apiVersion: string;
  kind: string;
  resources?: string[];
  namespace?: string;
  images?: ImageRule[];
  patches?: PatchRule[];
}

interface ImageRule {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

interface PatchRule {
  target: { kind: string; name: string };
  patch?: string;
  path?: string;
}

interface JsonPatchOperation {
  op: string;
  path: string;
  value?: unknown;
}

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'images', 'patches']);
const CLUSTER_SCOPED_KINDS = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PersistentVolume',
  'PriorityClass',
  'StorageClass',
  'IngressClass',
]);

export function renderKustomization(dir: string): Rendered {
  const file = path.join(dir, 'kustomization.yaml');
  const kustomization = parse(readFileSync(file, 'utf8')) as Kustomization;
  if (kustomization.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || kustomization.kind !== 'Kustomization') {
    throw new Error(`${file}: not a kustomize.config.k8s.io/v1beta1 Kustomization`);
  }
  for (const field of Object.keys(kustomization)) {
    if (!KUSTOMIZATION_FIELDS.has(field)) {
      throw new Error(`${file}: "${field}" is not supported by the test renderer (test/support/kustomize.ts)`);
    }
  }

  const rendered: Rendered = { manifests: [], files: [file] };
  for (const entry of kustomization.resources ?? []) {
    const resource = path.resolve(dir, entry);
    if (statSync(resource).isDirectory()) {
      const inner = renderKustomization(resource);
      rendered.manifests.push(...inner.manifests);
      rendered.files.push(...inner.files);
    } else {
      rendered.manifests.push(...readManifests(resource));
      rendered.files.push(resource);
    }
  }
  assertUniqueIds(rendered.manifests, file);

  for (const rule of kustomization.patches ?? []) applyPatchRule(rendered.manifests, rule, dir, file);
  if (kustomization.namespace) {
    for (const manifest of rendered.manifests) {
      if (!CLUSTER_SCOPED_KINDS.has(manifest.kind)) manifest.metadata.namespace = kustomization.namespace;
    }
  }
  for (const rule of kustomization.images ?? []) applyImageRule(rendered.manifests, rule, file);
  return rendered;
}

/** Every document of a YAML file, each checked to be a Kubernetes object. */
export function readManifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).flatMap((document, index) => {
    if (document.errors.length > 0) throw new Error(`${file}: ${document.errors[0]?.message}`);
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return [];
    if (!isManifest(value)) {
      throw new Error(`${file}: document ${index} is not a Kubernetes object (apiVersion, kind, metadata.name)`);
    }
    return [value];
  });
}

function isManifest(value: unknown): value is Manifest {
  const candidate = value as Partial<Manifest> | null;
  return (
    typeof candidate?.apiVersion === 'string' &&
    typeof candidate.kind === 'string' &&
    typeof candidate.metadata?.name === 'string'
  );
}

function assertUniqueIds(manifests: Manifest[], file: string): void {
  const seen = new Set<string>();
  for (const manifest of manifests) {
    const id = `${manifest.apiVersion}/${manifest.kind}/${manifest.metadata.namespace ?? ''}/${manifest.metadata.name}`;
    if (seen.has(id)) throw new Error(`${file}: ${id} is defined twice`);
    seen.add(id);
  }
}

function applyPatchRule(manifests: Manifest[], rule: PatchRule, dir: string, file: string): void {
  const targetFields = Object.keys(rule.target ?? {});
  if (!rule.target?.kind || !rule.target.name || targetFields.some((field) => field !== 'kind' && field !== 'name')) {
    throw new Error(`${file}: a patch target must name exactly a kind and a name`);
  }
  const text = rule.patch ?? (rule.path ? readFileSync(path.resolve(dir, rule.path), 'utf8') : undefined);
  const operations: unknown = text === undefined ? undefined : parse(text);
  if (!Array.isArray(operations)) {
    throw new Error(`${file}: only JSON 6902 patches (a list of operations) are supported by the test renderer`);
  }
  const targets = manifests.filter((m) => m.kind === rule.target.kind && m.metadata.name === rule.target.name);
  if (targets.length === 0) throw new Error(`${file}: no ${rule.target.kind} ${rule.target.name} to patch`);
  for (const target of targets) {
    for (const operation of operations as JsonPatchOperation[]) {
      applyOperation(target, operation, `${file}: ${operation.op} ${operation.path}`);
    }
  }
}

/** One RFC 6902 operation (add, remove, replace, test), in place. */
export function applyOperation(document: unknown, operation: JsonPatchOperation, where: string): void {
  const tokens = parsePointer(operation.path, where);
  const key = tokens.pop();
  if (key === undefined) throw new Error(`${where}: the whole document cannot be patched`);
  let parent: unknown = document;
  for (const token of tokens) {
    parent = childOf(parent, token, where);
    if (parent === undefined) throw new Error(`${where}: ${token} does not exist`);
  }
  if (parent === null || typeof parent !== 'object') throw new Error(`${where}: the parent is not a container`);
  const exists = childOf(parent, key, where) !== undefined;
  const value: unknown = structuredClone(operation.value);

  switch (operation.op) {
    case 'test':
      if (!isDeepStrictEqual(childOf(parent, key, where), value)) throw new Error(`${where}: test failed`);
      return;
    case 'add':
      if (Array.isArray(parent)) {
        const index = key === '-' ? parent.length : arrayIndex(parent, key, where, true);
        parent.splice(index, 0, value);
      } else {
        (parent as Record<string, unknown>)[key] = value;
      }
      return;
    case 'replace':
    case 'remove':
      if (!exists) throw new Error(`${where}: nothing at the path`);
      if (Array.isArray(parent)) {
        const index = arrayIndex(parent, key, where, false);
        if (operation.op === 'replace') parent[index] = value;
        else parent.splice(index, 1);
      } else if (operation.op === 'replace') {
        (parent as Record<string, unknown>)[key] = value;
      } else {
        delete (parent as Record<string, unknown>)[key];
      }
      return;
    default:
      throw new Error(`${where}: the operation is not supported by the test renderer`);
  }
}

function parsePointer(pointer: string, where: string): string[] {
  if (!pointer.startsWith('/')) throw new Error(`${where}: not a JSON pointer`);
  return pointer
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function childOf(container: unknown, token: string, where: string): unknown {
  if (Array.isArray(container))
    return token === '-' ? undefined : container[arrayIndex(container, token, where, false)];
  if (container !== null && typeof container === 'object') return (container as Record<string, unknown>)[token];
  return undefined;
}

function arrayIndex(array: unknown[], token: string, where: string, forInsert: boolean): number {
  const index = /^(0|[1-9][0-9]*)$/.test(token) ? Number(token) : NaN;
  if (Number.isNaN(index) || index > array.length || (!forInsert && index === array.length)) {
    throw new Error(`${where}: ${token} is not an index of the array`);
  }
  return index;
}

function applyImageRule(manifests: Manifest[], rule: ImageRule, file: string): void {
  let matched = 0;
  for (const container of manifests.flatMap(containersOf)) {
    const image = splitImage(container.image);
    if (image.name !== rule.name) continue;
    matched += 1;
    const name = rule.newName ?? image.name;
    if (rule.digest) container.image = `${name}@${rule.digest}`;
    else if (rule.newTag) container.image = `${name}:${rule.newTag}`;
    else container.image = `${name}${image.suffix}`;
  }
  if (matched === 0) throw new Error(`${file}: no container uses the image ${rule.name}`);
}

interface Container {
  name: string;
  image: string;
}

/** The containers (and init containers) of a workload's pod template. */
export function containersOf(manifest: Manifest): Container[] {
  const podSpec = podSpecOf(manifest);
  if (!podSpec) return [];
  return [...((podSpec.initContainers as Container[]) ?? []), ...((podSpec.containers as Container[]) ?? [])];
}

function podSpecOf(manifest: Manifest): Record<string, unknown> | undefined {
  switch (manifest.kind) {
    case 'Pod':
      return field(manifest, 'spec');
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return field(manifest, 'spec', 'template', 'spec');
    case 'CronJob':
      return field(manifest, 'spec', 'jobTemplate', 'spec', 'template', 'spec');
    default:
      return undefined;
  }
}

function field(value: unknown, ...keys: string[]): Record<string, unknown> | undefined {
  let current = value;
  for (const key of keys) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current !== null && typeof current === 'object' ? (current as Record<string, unknown>) : undefined;
}

/** `registry:5000/team/app:1.2@sha256:…` → name `registry:5000/team/app`, suffix `:1.2@sha256:…`. */
function splitImage(image: string): { name: string; suffix: string } {
  const at = image.indexOf('@');
  const withoutDigest = at === -1 ? image : image.slice(0, at);
  const colon = withoutDigest.lastIndexOf(':');
  const end = colon > withoutDigest.lastIndexOf('/') ? colon : withoutDigest.length;
  return { name: image.slice(0, end), suffix: image.slice(end) };
}
