import { createHash } from 'node:crypto';

/** What an upstream offers, as stored in `server_items.kind`. */
export type ItemKind = 'tool' | 'prompt' | 'resource' | 'resource_template';
export const ITEM_KINDS: readonly ItemKind[] = ['tool', 'prompt', 'resource', 'resource_template'];

/**
 * The fields of a definition that make up its identity for change detection.
 * `_meta`, icons and anything else an upstream adds are left out: they do not
 * change what a model is told or what a call does.
 */
export const FINGERPRINT_FIELDS: Readonly<Record<ItemKind, readonly string[]>> = {
  tool: ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'],
  prompt: ['name', 'title', 'description', 'arguments'],
  resource: ['uri', 'name', 'title', 'description', 'mimeType'],
  resource_template: ['uriTemplate', 'name', 'title', 'description', 'mimeType'],
};

/**
 * JSON with object keys sorted (by UTF-16 code units) at every depth and no
 * whitespace; for parsed JSON input this is RFC 8785 (JCS). Values JSON cannot
 * hold are dropped from objects and become null in arrays, as JSON.stringify does.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((element) => canonicalJson(element)).join(',')}]`;
  const record = value as Record<string, unknown>;
  const members = Object.keys(record)
    .sort()
    .filter((key) => isJsonValue(record[key]))
    .map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`);
  return `{${members.join(',')}}`;
}

/** Lowercase hex sha256 over the canonical JSON of the identifying fields of a definition. */
export function fingerprintOf(kind: ItemKind, definition: Readonly<Record<string, unknown>>): string {
  const picked: Record<string, unknown> = {};
  for (const field of FINGERPRINT_FIELDS[kind]) {
    if (definition[field] !== undefined) picked[field] = definition[field];
  }
  return createHash('sha256').update(canonicalJson(picked), 'utf8').digest('hex');
}

function isJsonValue(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}
