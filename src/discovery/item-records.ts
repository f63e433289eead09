import { fingerprintOf, ITEM_KINDS, type ItemKind } from './fingerprint';
import { gatewayName, gatewayResourceUri } from './gateway-names';
import { type Definition, itemKeyOf } from './upstream-catalog';

/** One row of `server_items` as a sync writes it. */
export interface ItemRecord {
  kind: ItemKind;
  /** Name (tools, prompts), URI (resources) or URI template (templates). */
  name: string;
  gatewayName: string;
  title: string | null;
  description: string | null;
  definition: Definition;
  fingerprint: string;
  /** Position in the upstream's list of this kind. */
  position: number;
}

export type ItemChangeType = 'added' | 'removed' | 'changed';

export interface ItemChangeRecord {
  kind: ItemKind;
  name: string;
  change: ItemChangeType;
  beforeFingerprint: string | null;
  afterFingerprint: string | null;
}

export type FingerprintedItem = Pick<ItemRecord, 'kind' | 'name' | 'fingerprint'>;

/** The rows one sync stores for a server with `slug`. */
export function itemRecords(
  slug: string,
  definitions: Readonly<Record<ItemKind, readonly Definition[]>>,
): ItemRecord[] {
  return ITEM_KINDS.flatMap((kind) =>
    definitions[kind].map((definition, position) => {
      const name = itemKeyOf(kind, definition);
      return {
        kind,
        name,
        gatewayName: kind === 'tool' || kind === 'prompt' ? gatewayName(slug, name) : gatewayResourceUri(slug, name),
        title: titleOf(kind, definition),
        description: stringOrNull(definition.description),
        definition,
        fingerprint: fingerprintOf(kind, definition),
        position,
      };
    }),
  );
}

/** What changed from one sync to the next, in a stable order (kind, then name). */
export function diffItems(
  before: readonly FingerprintedItem[],
  after: readonly FingerprintedItem[],
): ItemChangeRecord[] {
  const keyOf = (item: FingerprintedItem): string => `${item.kind}\u0000${item.name}`;
  const previous = new Map(before.map((item) => [keyOf(item), item]));
  const changes: ItemChangeRecord[] = [];
  for (const item of after) {
    const old = previous.get(keyOf(item));
    previous.delete(keyOf(item));
    if (!old) {
      changes.push({ ...identity(item), change: 'added', beforeFingerprint: null, afterFingerprint: item.fingerprint });
    } else if (old.fingerprint !== item.fingerprint) {
      changes.push({
        ...identity(item),
        change: 'changed',
        beforeFingerprint: old.fingerprint,
        afterFingerprint: item.fingerprint,
      });
    }
  }
  for (const old of previous.values()) {
    changes.push({ ...identity(old), change: 'removed', beforeFingerprint: old.fingerprint, afterFingerprint: null });
  }
  const order = (kind: ItemKind): number => ITEM_KINDS.indexOf(kind);
  return changes.sort((a, b) => order(a.kind) - order(b.kind) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function identity(item: FingerprintedItem): { kind: ItemKind; name: string } {
  return { kind: item.kind, name: item.name };
}

/** Tools of older protocol versions carry their display title in `annotations.title`. */
function titleOf(kind: ItemKind, definition: Definition): string | null {
  const title = stringOrNull(definition.title);
  if (title !== null || kind !== 'tool') return title;
  const annotations = definition.annotations;
  return typeof annotations === 'object' && annotations !== null
    ? stringOrNull((annotations as Definition).title)
    : null;
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' ? value : null;
}
