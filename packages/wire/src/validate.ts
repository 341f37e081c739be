import { describeValue, WireError } from './errors.js';
import {
  bool,
  boundedBytes,
  bytes,
  type Check,
  checkShape,
  fail,
  fileMode,
  folderId,
  hash,
  isPlainObject,
  literal,
  mtime,
  nanos,
  nodeId,
  object,
  oneOf,
  opt,
  ownerId,
  req,
  type Shape,
  safeUint,
  symlinkTarget,
  text,
  wirePath,
  wsUrl,
} from './field-checks.js';
import { resolveLimits, type WireLimitsOptions } from './limits.js';
import {
  CODECS,
  MAX_OPS_PER_MESSAGE,
  MAX_XATTRS_BYTES,
  type Message,
  type MessageType,
  NONCE_BYTES,
  type OpKind,
  PROOF_BYTES,
  PROTOCOL_NAME,
  PROTOCOL_VERSION,
} from './messages.js';

/**
 * Runtime checks for everything that crosses the wire: one table of fields per message type and
 * per op kind. An unknown field is an error rather than ignored, so both sides always agree on
 * what a message says; a new field means a new protocol version.
 */

const MAX_ERROR_CODE_CHARS = 64;
const MAX_ERROR_TEXT_CHARS = 4096;

const epoch = object({ fields: { term: req(safeUint), node: req(nodeId) } });

/** Owner and group as numeric ids: optional, a primary that does not send them leaves them be. */
const OWNER = { uid: opt(ownerId), gid: opt(ownerId) };
/** Owner, the nanoseconds of the mtime and the attribute list (its structure is checked where it is decoded). */
const ATTRS = { ...OWNER, mtimeNs: opt(nanos), xattrs: opt(boundedBytes(MAX_XATTRS_BYTES)) };

const OP_SHAPES: ReadonlyMap<OpKind, Shape> = new Map<OpKind, Shape>([
  [
    'mkdir',
    {
      fields: {
        kind: req(literal('mkdir')),
        path: req(wirePath),
        mode: req(fileMode),
        mtimeMs: req(mtime),
        ...ATTRS,
      },
    },
  ],
  [
    'symlink',
    {
      fields: {
        kind: req(literal('symlink')),
        path: req(wirePath),
        target: req(symlinkTarget),
        mtimeMs: req(mtime),
        ...ATTRS,
      },
    },
  ],
  [
    'write',
    {
      fields: {
        kind: req(literal('write')),
        path: req(wirePath),
        mode: req(fileMode),
        mtimeMs: req(mtime),
        ...ATTRS,
        size: req(safeUint),
        hash: req(hash),
        encoding: req(oneOf('full', 'delta')),
        baseHash: opt(hash),
        part: req(safeUint),
        last: req(bool),
        abort: opt(bool),
        offset: opt(safeUint),
        data: req(bytes()),
      },
      refine: (v, field) => {
        if (v.abort !== undefined && v.last !== true)
          fail(`${field}.abort`, 'only on the last part', v.abort);
        if (v.encoding === 'delta' && v.baseHash === undefined) {
          fail(`${field}.baseHash`, 'a hash for a delta', v.baseHash);
        }
        if (v.encoding === 'full' && v.baseHash !== undefined) {
          fail(`${field}.baseHash`, 'none for a full write', v.baseHash);
        }
        if (v.offset !== undefined) {
          if (v.encoding !== 'full') fail(`${field}.offset`, 'only on a full write', v.offset);
          const end = (v.offset as number) + (v.data as Uint8Array).length;
          if (end > (v.size as number)) fail(`${field}.offset`, `data ending by size ${v.size}`, v.offset);
        }
      },
    },
  ],
  ['delete', { fields: { kind: req(literal('delete')), path: req(wirePath) } }],
  ['rename', { fields: { kind: req(literal('rename')), from: req(wirePath), to: req(wirePath) } }],
  ['link', { fields: { kind: req(literal('link')), path: req(wirePath), target: req(wirePath) } }],
  [
    'meta',
    {
      fields: {
        kind: req(literal('meta')),
        path: req(wirePath),
        mode: req(fileMode),
        mtimeMs: req(mtime),
        ...ATTRS,
      },
    },
  ],
]);

const op: Check = (v, field, limits) => {
  if (!isPlainObject(v)) fail(field, 'an object', v);
  const kind = v.kind;
  if (typeof kind !== 'string') fail(`${field}.kind`, 'a string', kind);
  const shape = OP_SHAPES.get(kind as OpKind);
  if (shape === undefined) {
    throw new WireError('ERR_UNKNOWN_TYPE', `${field}.kind: unknown op kind ${describeValue(kind)}`);
  }
  checkShape(v, shape, field, limits);
};

const manifestEntry = object({
  fields: {
    path: req(wirePath),
    kind: req(oneOf('file', 'dir', 'symlink')),
    size: req(safeUint),
    mtimeMs: req(mtime),
    mode: req(fileMode),
    ...ATTRS,
    hash: opt(hash),
    target: opt(symlinkTarget),
    link: opt(wirePath),
  },
  refine: (v, field) => {
    if (v.kind !== 'file' && v.hash !== undefined) {
      fail(`${field}.hash`, 'no hash on a non-file entry', v.hash);
    }
    if (v.kind === 'symlink' && v.target === undefined) {
      fail(`${field}.target`, 'a target on a symlink entry', v.target);
    }
    if (v.kind !== 'symlink' && v.target !== undefined) {
      fail(`${field}.target`, 'no target on a non-symlink', v.target);
    }
    if (v.kind !== 'file' && v.link !== undefined) fail(`${field}.link`, 'a link on files only', v.link);
  },
});

const manifestEntries: Check = (v, field, limits) => {
  if (!Array.isArray(v)) fail(field, 'an array', v);
  if (v.length > limits.maxManifestEntries) {
    fail(field, `at most ${limits.maxManifestEntries} entries`, v, 'ERR_TOO_LARGE');
  }
  for (let i = 0; i < v.length; i++) manifestEntry(v[i], `${field}[${i}]`, limits);
};

const opList: Check = (v, field, limits) => {
  if (!Array.isArray(v)) fail(field, 'an array', v);
  if (v.length === 0 || v.length > MAX_OPS_PER_MESSAGE) {
    fail(field, `1 to ${MAX_OPS_PER_MESSAGE} ops`, v, v.length === 0 ? undefined : 'ERR_TOO_LARGE');
  }
  for (let i = 0; i < v.length; i++) op(v[i], `${field}[${i}]`, limits);
};

const seqList: Check = (v, field, limits) => {
  if (!Array.isArray(v)) fail(field, 'an array', v);
  for (let i = 0; i < v.length; i++) {
    safeUint(v[i], `${field}[${i}]`, limits);
    if (i > 0 && v[i] < v[i - 1]) fail(`${field}[${i}]`, `at least ${v[i - 1]} (never decreasing)`, v[i]);
  }
};

/** Most codecs one hello lists. */
const MAX_CODECS = 8;
const CODEC_NAME = /^[a-z0-9][a-z0-9-]{0,15}$/;

/** The codecs a hello lists: known or not (a newer peer may know more), each named once. */
const codecList: Check = (v, field) => {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CODECS)
    fail(field, `1 to ${MAX_CODECS} codecs`, v);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string' || !CODEC_NAME.test(v[i])) fail(`${field}[${i}]`, 'a codec name', v[i]);
  }
  if (new Set(v).size !== v.length) fail(field, 'each codec once', v);
};

const codec = oneOf(...CODECS);

/** The length a compressed message inflates to: 1 byte up to the message limit. */
const rawLength: Check = (v, field, limits) => {
  safeUint(v, field, limits);
  if ((v as number) === 0) fail(field, 'at least 1 byte', v);
  if ((v as number) > limits.maxMessageBytes)
    fail(field, `at most ${limits.maxMessageBytes} bytes`, v, 'ERR_TOO_LARGE');
};

const helloVersion: Check = (v, field, limits) => {
  safeUint(v, field, limits);
  if (v !== PROTOCOL_VERSION) fail(field, `version ${PROTOCOL_VERSION}`, v, 'ERR_PROTOCOL_VERSION');
};

const MESSAGE_SHAPES: ReadonlyMap<MessageType, Shape> = new Map<MessageType, Shape>([
  [
    'hello',
    {
      // `protocol` and `version` come first, so a peer speaking another version is told so,
      // whatever else its hello holds.
      fields: {
        protocol: req((v, field) => {
          if (v !== PROTOCOL_NAME) fail(field, `'${PROTOCOL_NAME}'`, v, 'ERR_PROTOCOL_VERSION');
        }),
        version: req(helloVersion),
        type: req(literal('hello')),
        nodeId: req(nodeId),
        role: req(oneOf('primary', 'mirror', 'fenced')),
        epoch: req(epoch),
        appliedSeq: req(safeUint),
        nonce: req(bytes(NONCE_BYTES)),
        listenUrl: opt(wsUrl),
        fresh: opt(bool),
        folder: opt(folderId),
        codecs: opt(codecList),
        compress: opt(bool),
      },
    },
  ],
  ['auth', { fields: { type: req(literal('auth')), proof: req(bytes(PROOF_BYTES)) } }],
  [
    'welcome',
    {
      fields: {
        type: req(literal('welcome')),
        epoch: req(epoch),
        seq: req(safeUint),
        mode: req(oneOf('resume', 'reconcile')),
        fork: opt(object({ fields: { epoch: req(epoch), seq: req(safeUint) } })),
        xattrs: opt(object({ fields: { acls: req(bool), privileged: req(bool) } })),
        codec: opt(codec),
      },
    },
  ],
  ['op', { fields: { type: req(literal('op')), epoch: req(epoch), seq: req(safeUint), op: req(op) } }],
  [
    'ops',
    {
      fields: { type: req(literal('ops')), epoch: req(epoch), seqs: req(seqList), ops: req(opList) },
      refine: (v, field) => {
        const seqs = v.seqs as unknown[];
        const ops = v.ops as unknown[];
        if (seqs.length !== ops.length) fail(`${field}.seqs`, `one per op (${ops.length})`, seqs.length);
      },
    },
  ],
  ['ack', { fields: { type: req(literal('ack')), epoch: req(epoch), seq: req(safeUint) } }],
  [
    'manifest',
    {
      fields: {
        type: req(literal('manifest')),
        epoch: req(epoch),
        entries: req(manifestEntries),
        last: req(bool),
      },
    },
  ],
  [
    'need',
    {
      fields: { type: req(literal('need')), epoch: req(epoch), path: req(wirePath), signature: opt(bytes()) },
    },
  ],
  [
    'compressed',
    {
      fields: {
        type: req(literal('compressed')),
        codec: req(codec),
        rawLength: req(rawLength),
        data: req(bytes()),
      },
    },
  ],
  [
    'error',
    {
      fields: {
        type: req(literal('error')),
        code: req(text(1, MAX_ERROR_CODE_CHARS)),
        message: req(text(0, MAX_ERROR_TEXT_CHARS)),
      },
    },
  ],
]);

/**
 * Checks that `value` is a well-formed {@link Message} under `limits` and returns it, unchanged and
 * uncopied. Throws `WireError`: `ERR_UNKNOWN_TYPE` for an unknown `type` or op `kind`,
 * `ERR_PROTOCOL_VERSION` for a hello of another protocol or version, `ERR_BAD_PATH` for a bad path
 * or symlink target, `ERR_TOO_LARGE` for a manifest page over `maxManifestEntries`, and
 * `ERR_BAD_MESSAGE` for anything else. The message names the field, e.g. `op.op.path`.
 */
export function validateMessage(value: unknown, limits?: WireLimitsOptions): Message {
  const resolved = resolveLimits(limits);
  if (!isPlainObject(value)) fail('message', 'an object', value);
  const type = value.type;
  if (typeof type !== 'string') fail('message.type', 'a string', type);
  const shape = MESSAGE_SHAPES.get(type as MessageType);
  if (shape === undefined) {
    throw new WireError('ERR_UNKNOWN_TYPE', `message.type: unknown type ${describeValue(type)}`);
  }
  checkShape(value, shape, type, resolved);
  return value as unknown as Message;
}
