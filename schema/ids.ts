import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { NotFoundError } from '../server/errors.js';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Database ids are UUIDs; anything else cannot name a row (and must not reach SQL). */
export function isUuid(id: string): boolean {
  return uuidPattern.test(id);
}

/**
 * The database id inside a global ID of the given type. A malformed ID, an ID of another
 * type and an ID of another company all end the same way: NotFoundError.
 */
export function localId(globalId: string, typename: string, entity: string): string {
  try {
    const decoded = decodeGlobalID(globalId);
    if (decoded.typename === typename && isUuid(decoded.id)) return decoded.id;
  } catch {
    // Falls through to the same error as an unknown ID.
  }
  throw new NotFoundError(entity, globalId);
}

export function globalId(typename: string, id: string): string {
  return encodeGlobalID(typename, id);
}
