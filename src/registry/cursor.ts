import { decodeTimeIdCursor, encodeTimeIdCursor } from '../common/time-id-cursor';

/** A position in the list of servers, ordered by (createdAt, id). */
export interface ListPosition {
  createdAt: Date;
  id: string;
}

/** Opaque to clients: base64url of `createdAt|id`. */
export function encodeCursor(position: ListPosition): string {
  return encodeTimeIdCursor({ at: position.createdAt, id: position.id });
}

/** The position a cursor names, or undefined when it is not one this API issued. */
export function decodeCursor(cursor: string): ListPosition | undefined {
  const position = decodeTimeIdCursor(cursor);
  return position && { createdAt: position.at, id: position.id };
}
