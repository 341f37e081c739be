/**
 * Every message of the mimic replication protocol, as one union discriminated on `type`.
 *
 * Both sides open with `hello`, then prove knowledge of the shared token with `auth`. The primary
 * answers a mirror with `welcome`, which says whether the mirror can resume from its applied
 * sequence number or must reconcile. In reconcile mode the primary streams `manifest` pages, the
 * mirror asks for what it lacks with `need` (answered by ops), and the last page is marked `last`;
 * the op stream continues after the sequence the welcome named. The primary pushes numbered `op`s
 * and the mirror answers with `ack`s, the first one once the reconcile is complete. Every message after the hello
 * carries the sender's epoch, so a message from a fenced primary can be told apart and dropped.
 * When the hellos agree on a codec and the welcome names it, any later message may travel
 * wrapped in `compressed`; the receiver unwraps it before anything else looks at it.
 */

/** Name every hello must carry. */
export const PROTOCOL_NAME = 'mimic';

/** The one protocol version this package speaks; a hello with another one is refused. */
export const PROTOCOL_VERSION = 4;

/** Most ops one `ops` message carries. */
export const MAX_OPS_PER_MESSAGE = 1024;

/** Length in bytes of the hello nonce and of the auth proof (an HMAC-SHA256). */
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;

/** Node ids: 1 to 64 characters from `[A-Za-z0-9._-]`. */
export const NODE_ID_PATTERN: RegExp = /^[A-Za-z0-9._-]{1,64}$/;

/** Folder ids: 32 lowercase hex characters (128 random bits), made when a folder is first served. */
export const FOLDER_ID_PATTERN: RegExp = /^[0-9a-f]{32}$/;

/** Content hashes: xxh64, as 16 lowercase hex characters. */
export const HASH_PATTERN: RegExp = /^[0-9a-f]{16}$/;

/**
 * Who may write: the node with the highest epoch. A promotion bumps `term`; `node` breaks ties
 * between two nodes that promoted themselves to the same term.
 */
export interface Epoch {
  term: number;
  node: string;
}

/** Orders epochs by `term`, then by `node` in plain string order. */
export function compareEpoch(a: Epoch, b: Epoch): -1 | 0 | 1 {
  if (a.term !== b.term) return a.term < b.term ? -1 : 1;
  if (a.node === b.node) return 0;
  return a.node < b.node ? -1 : 1;
}

export type Role = 'primary' | 'mirror' | 'fenced';

export interface HelloMessage {
  type: 'hello';
  protocol: typeof PROTOCOL_NAME;
  version: number;
  nodeId: string;
  role: Role;
  epoch: Epoch;
  /** Highest sequence number the sender has applied (a primary: has sent). */
  appliedSeq: number;
  /** Fresh random challenge; the peer's `auth` proof covers it. */
  nonce: Uint8Array;
  /** Where the sender accepts connections, if it does (`ws:` or `wss:`). */
  listenUrl?: string;
  /**
   * A mirror that has never applied anything and whose folder is empty: a primary whose journal
   * reaches back to its first row can stream it all instead of comparing manifests.
   */
  fresh?: boolean;
  /**
   * The replicated folder's identity: a primary always names the folder it serves; a mirror
   * names the folder it holds once it has adopted one. A mirror never follows a primary of
   * another folder, so an emptied or recreated folder cannot empty the mirrors.
   */
  folder?: string;
  /**
   * The compression codecs the sender can decode, in its order of preference (names it does not
   * know are ignored by the peer). Sent only when one side asks for compression: by a node that
   * asks, and by a mirror answering a hello that listed codecs.
   */
  codecs?: string[];
  /** The sender asks for compressed messages (`--compress`); needs `codecs` on both hellos. */
  compress?: boolean;
}

export interface AuthMessage {
  type: 'auth';
  /** HMAC-SHA256 over the peer's nonce and the sender's node id, see `authProof`. */
  proof: Uint8Array;
}

export interface WelcomeMessage {
  type: 'welcome';
  epoch: Epoch;
  /** Sequence number the primary continues from. */
  seq: number;
  mode: 'resume' | 'reconcile';
  /**
   * Present when the primary sends extended attributes: `user.*` always, the POSIX ACLs and
   * `security.*`/`trusted.*` as its flags say. An op or entry without `xattrs` then has none of
   * those; absent, the primary sends none and a mirror leaves its own alone.
   */
  xattrs?: { acls: boolean; privileged: boolean };
  /**
   * Where the primary's epoch began: the epoch it was promoted from and the last sequence of
   * that epoch it held. A returning former primary of that epoch keeps what it wrote after it.
   */
  fork?: { epoch: Epoch; seq: number };
  /**
   * The codec the primary compresses with from here on, one the mirror listed: it may send
   * `compressed` messages after this welcome, and the mirror may compress its own the same way.
   * Absent: nothing on this connection is compressed.
   */
  codec?: Codec;
}

/**
 * A path's owner and group as numeric ids (names differ between hosts, as rsync --numeric-ids
 * assumes). Absent: the sender does not say, and the mirror leaves the owner it has.
 */
export interface Owner {
  uid?: number;
  gid?: number;
}

/** Longest encoded attribute list of one path (names and values within 256 KiB, plus framing). */
export const MAX_XATTRS_BYTES = 256 * 1024 + 8 * 1024;

/** What a path carries beyond its kind, mode and whole-millisecond mtime; each part optional. */
export interface PathAttrs extends Owner {
  /** Nanoseconds past `mtimeMs` (0 to 999,999): the rest of a time the file system keeps in ns. */
  mtimeNs?: number;
  /**
   * Extended attributes, the POSIX ACLs among them, as one sorted list in the canonical encoding
   * of @mimic/fsmeta (count, then name and value lengths, big-endian). Absent: none (see the
   * welcome's `xattrs`).
   */
  xattrs?: Uint8Array;
}

export interface MkdirOp extends PathAttrs {
  kind: 'mkdir';
  path: string;
  mode: number;
  mtimeMs: number;
}

export interface SymlinkOp extends PathAttrs {
  kind: 'symlink';
  path: string;
  target: string;
  mtimeMs: number;
}

/**
 * One part of a file's new content. A file travels as parts `0..n` with `last` set on the final
 * one; `size` and `hash` describe the whole resulting file, `data` only this part. With
 * `encoding: 'delta'` the parts form a patch against the file whose hash is `baseHash`.
 */
export interface WriteOp extends PathAttrs {
  kind: 'write';
  path: string;
  mode: number;
  mtimeMs: number;
  size: number;
  hash: string;
  encoding: 'full' | 'delta';
  baseHash?: string;
  part: number;
  last: boolean;
  /**
   * On the last part only: the file changed while it was read, so the parts sent are void.
   * The mirror keeps its copy; a later op brings the new content.
   */
  abort?: boolean;
  /**
   * Full writes only: where in the file this part's data begins; absent, right after the previous
   * part's data (or at 0). Offsets never go back; what no part covers up to `size` is a hole.
   */
  offset?: number;
  data: Uint8Array;
}

export interface DeleteOp {
  kind: 'delete';
  path: string;
}

export interface RenameOp {
  kind: 'rename';
  from: string;
  to: string;
}

export interface MetaOp extends PathAttrs {
  kind: 'meta';
  path: string;
  mode: number;
  mtimeMs: number;
}

/**
 * `path` becomes another name of the file at `target` (a hard link), replacing what was there:
 * the two share content, mode, owner and times from then on.
 */
export interface LinkOp {
  kind: 'link';
  path: string;
  target: string;
}

export type Op = MkdirOp | SymlinkOp | WriteOp | DeleteOp | RenameOp | MetaOp | LinkOp;
export type OpKind = Op['kind'];

export interface OpMessage {
  type: 'op';
  epoch: Epoch;
  seq: number;
  op: Op;
}

/**
 * Several ops in one message, applied as if each had come in an `op` message of its own, in
 * order: a primary sends small files and tree changes this way (one message, not one per file).
 */
export interface OpsMessage {
  type: 'ops';
  epoch: Epoch;
  /** The sequence number of each op, in order (never decreasing). */
  seqs: number[];
  ops: Op[];
}

export interface AckMessage {
  type: 'ack';
  epoch: Epoch;
  /** Highest sequence number the mirror has applied and made durable. */
  seq: number;
}

export interface ManifestEntry extends PathAttrs {
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  size: number;
  mtimeMs: number;
  mode: number;
  /** Files only. */
  hash?: string;
  /** Symlinks only, and required for them. */
  target?: string;
  /** Files only: another path of the manifest that is the same file (a hard link to it). */
  link?: string;
}

export interface ManifestMessage {
  type: 'manifest';
  epoch: Epoch;
  entries: ManifestEntry[];
  /** Set on the final page. */
  last: boolean;
}

export interface NeedMessage {
  type: 'need';
  epoch: Epoch;
  path: string;
  /** Block signature of the mirror's copy, when it has one to patch against. */
  signature?: Uint8Array;
}

/** Compression codecs, in the order a node prefers them when it has them all. */
export const CODECS = ['zstd', 'brotli', 'deflate'] as const;
export type Codec = (typeof CODECS)[number];

/**
 * Another message, encoded and then compressed with `codec` (raw deflate, brotli or a zstd
 * frame): `rawLength` is the length of the encoded message, which may not exceed the message
 * limit. Only ever sent on a connection whose welcome named `codec`; never nested, never a
 * hello, auth or welcome.
 */
export interface CompressedMessage {
  type: 'compressed';
  codec: Codec;
  rawLength: number;
  data: Uint8Array;
}

export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
}

export type Message =
  | HelloMessage
  | AuthMessage
  | WelcomeMessage
  | OpMessage
  | OpsMessage
  | AckMessage
  | ManifestMessage
  | NeedMessage
  | CompressedMessage
  | ErrorMessage;

export type MessageType = Message['type'];

/** The message of a given type. */
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

export const MESSAGE_TYPES: readonly MessageType[] = [
  'hello',
  'auth',
  'welcome',
  'op',
  'ops',
  'ack',
  'manifest',
  'need',
  'compressed',
  'error',
];

export const OP_KINDS: readonly OpKind[] = ['mkdir', 'symlink', 'write', 'delete', 'rename', 'meta', 'link'];
