import { createHash } from 'node:crypto';

/** What the audit trail keeps of a request's arguments. */
export type ArgumentMode = 'off' | 'redacted' | 'hash';

export interface ArgumentPolicyConfig {
  mode: ArgumentMode;
  /** Object keys whose values are replaced, matched case-insensitively anywhere in the key. */
  redactKeys: RegExp;
  /** Larger canonical JSON is replaced by its size and hash. */
  maxBytes: number;
}

export const REDACTED = '[redacted]';
const MAX_DEPTH = 32;
/** A compact JWS (three base64url parts, the first a JSON header): a token wherever it appears, whatever its key. */
const JWT = /^eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const BEARER = /^bearer\s+\S+/i;
/** The same inside a longer string (a URL's query, a command line, a header written out, prose). */
const JWT_WITHIN = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;
/** `Bearer` and a credential within a string; one of letters only (`bearer of`) is prose, not a token. */
const BEARER_WITHIN = /\bbearer\s+(?=[A-Za-z]*[0-9._~+/-])[A-Za-z0-9._~+/-]+=*/gi;

/**
 * Applies the policy and returns canonical JSON text (object keys sorted,
 * so equal arguments give equal text and equal hashes), or null for none.
 */
export function applyArgumentPolicy(args: unknown, policy: ArgumentPolicyConfig): string | null {
  if (policy.mode === 'off' || args === undefined) return null;
  if (policy.mode === 'hash') {
    return JSON.stringify(`sha256:${sha256(canonicalJson(args, undefined))}`);
  }
  const text = canonicalJson(args, policy.redactKeys);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= policy.maxBytes) return text;
  return canonicalJson({ truncated: true, bytes, sha256: sha256(text) }, undefined);
}

/**
 * JSON with sorted keys; with `redact`, values under matching keys and
 * token-shaped strings are replaced. Never throws: cycles, bigints and
 * functions (impossible from a parsed body, possible from a caller) become markers.
 */
export function canonicalJson(value: unknown, redact: RegExp | undefined): string {
  return JSON.stringify(normalize(value, redact, 0, new Set()));
}

function normalize(value: unknown, redact: RegExp | undefined, depth: number, seen: Set<object>): unknown {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return redact ? withoutTokens(value) : value;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value !== 'object') return `[${typeof value}]`;
  if (depth >= MAX_DEPTH) return '[too deep]';
  if (seen.has(value)) return '[cycle]';
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item: unknown) => normalize(item, redact, depth + 1, seen));
    // No prototype: a key named `__proto__` (an own key of a parsed body) is then an entry like any other, where on a
    // plain object the assignment would set the prototype and drop the key and its value from the record and hash.
    const out = Object.create(null) as Record<string, unknown>;
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item === undefined) continue;
      out[key] = redact?.test(key) ? REDACTED : normalize(item, redact, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/** Roughly what V8 holds for a value besides a string's characters (two bytes each, at most): its slot and header. */
const VALUE_BYTES = 16;

/**
 * Whether arguments hold about `budget` bytes of memory at most. It stops counting once they hold more, so that small
 * arguments cost a few property reads (about 50 ns for a handful of fields) and large ones no more than `budget`.
 */
export function argumentsWithin(args: unknown, budget: number): boolean {
  return bytesLeft(args, budget, 0) >= 0;
}

function bytesLeft(value: unknown, left: number, depth: number): number {
  if (typeof value === 'string') return left - VALUE_BYTES - 2 * value.length;
  if (typeof value !== 'object' || value === null) return left - VALUE_BYTES;
  // Deeper than the policy reads (or a cycle, which a parsed body never has, but a caller could pass): not small.
  if (depth >= MAX_DEPTH) return -1;
  left -= VALUE_BYTES;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length && left >= 0; i++) left = bytesLeft(value[i], left, depth + 1);
    return left;
  }
  for (const key in value) {
    if (left < 0) break;
    left = bytesLeft((value as Record<string, unknown>)[key], left - VALUE_BYTES - 2 * key.length, depth + 1);
  }
  return left;
}

/** A string that is a token is replaced whole; tokens within a longer one are replaced where they stand. */
export function withoutTokens(value: string): string {
  if (JWT.test(value) || BEARER.test(value)) return REDACTED;
  return value.replace(BEARER_WITHIN, REDACTED).replace(JWT_WITHIN, REDACTED);
}

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Builds the key pattern from configuration: a case-insensitive regular expression source. */
export function redactKeyPattern(source: string): RegExp {
  return new RegExp(source, 'i');
}
