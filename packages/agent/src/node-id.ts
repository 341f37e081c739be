import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Store } from './store.js';

/** This node's id, made once (host name plus a random suffix) and kept in the store. */
export function nodeIdOf(store: Store): string {
  let id = store.getMeta('nodeId');
  if (!id) {
    const host =
      hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 40) || 'node';
    id = `${host}-${randomBytes(4).toString('hex')}`;
    store.setMeta('nodeId', id);
  }
  return id;
}
