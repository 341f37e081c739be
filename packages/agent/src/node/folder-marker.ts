import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { FOLDER_ID_PATTERN } from '@mimic/wire';
import { AgentError } from './errors.js';

/*
 * A replicated folder's identity.
 *
 * A folder id (128 random bits, hex) is made when a folder is first served (`mimic primary
 * --init`). It is kept twice: in the node's state, and in a marker file at the top of the root,
 * `.mimic-folder`, which is never replicated. Both must agree before a primary serves:
 *
 *   marker  state   primary                          mirror
 *   yes     none    adopts the marker's id           adopts the marker's id
 *   yes     same    serves                           follows primaries of that id only
 *   yes     other   refuses (ERR_FOLDER_MARKER)      refuses (ERR_FOLDER_MARKER)
 *   none    some    refuses: a failed mount or a     refuses: the same
 *                   recreated folder looks like this
 *   none    none    refuses, unless `init`: then a   adopts the id of the first primary it
 *                   new id and a new marker          follows, and writes its marker then
 *
 * A folder that lost its disk, or was moved away and made again empty, has no marker, so a
 * primary never tells its mirrors that every file was deleted. One made again with `--init`
 * gets a new id, and mirrors of the old one refuse it (ERR_FOLDER_ID) and keep their files.
 */

/** The marker's name at the top of the root (reserved: never replicated, never removed). */
export const FOLDER_MARKER = '.mimic-folder';

export function newFolderId(): string {
  return randomBytes(16).toString('hex');
}

function markerPath(root: string): string {
  return `${root.endsWith('/') ? root : `${root}/`}${FOLDER_MARKER}`;
}

/** The folder id in `root`'s marker, or null when it has none. A damaged marker is refused. */
export function readFolderMarker(root: string): string | null {
  let text: string;
  try {
    text = readFileSync(markerPath(root), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new AgentError('ERR_FOLDER_MARKER', `${markerPath(root)}: cannot read: ${(err as Error).message}`);
  }
  const id = text.split('\n', 1)[0]!.trim();
  if (!FOLDER_ID_PATTERN.test(id)) {
    throw new AgentError(
      'ERR_FOLDER_MARKER',
      `${markerPath(root)}: not a folder marker (its first line must be 32 lowercase hex characters)`,
    );
  }
  return id;
}

/** Writes `root`'s marker durably (temp file, fsync, rename, fsync of the root). */
export function writeFolderMarker(root: string, id: string): void {
  const final = markerPath(root);
  const tmp = `${final}.${randomBytes(4).toString('hex')}.tmp`;
  const text = `${id}\n# mimic folder marker: the identity of this replicated folder. Keep it.\n`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, final);
  const dir = openSync(root, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** What the node's state and the marker in its root say; `init` may create a new identity. */
export interface FolderIdentityInput {
  root: string;
  /** The folder id in the node's state, if it has one. */
  stateId: string | null;
  /** Create a new identity where neither marker nor state has one (a primary's `--init`). */
  init: boolean;
  role: 'primary' | 'mirror';
}

/**
 * The folder id a node starts with (see the table above): null for a mirror that has none yet.
 * Writes a new marker for `init`. Throws AgentError `ERR_FOLDER_MARKER` where it must not start.
 */
export function resolveFolderId(o: FolderIdentityInput): string | null {
  const marker = readFolderMarker(o.root);
  const where = markerPath(o.root);
  if (marker !== null && o.stateId !== null && marker !== o.stateId) {
    throw new AgentError(
      'ERR_FOLDER_MARKER',
      `${o.root}: its marker names folder ${marker}, but this node's state is of folder ${o.stateId}: another folder is mounted here, or the state belongs elsewhere; refusing to start`,
    );
  }
  if (marker !== null) return marker;
  if (o.stateId !== null) {
    throw new AgentError(
      'ERR_FOLDER_MARKER',
      `${o.root}: the folder marker ${where} is missing, but this node ${o.role === 'primary' ? 'served' : 'held'} folder ${o.stateId} from here: is its disk mounted? Refusing to start, so that mirrors never delete their copies; if the folder is intact, restore the marker with: echo ${o.stateId} > ${where}`,
    );
  }
  if (o.role === 'mirror') return null;
  if (!o.init) {
    throw new AgentError(
      'ERR_FOLDER_MARKER',
      `${o.root}: no folder marker (${where}): run 'mimic primary --init' once to serve it as a new folder`,
    );
  }
  const id = newFolderId();
  writeFolderMarker(o.root, id);
  return id;
}
