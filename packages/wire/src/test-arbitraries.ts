/**
 * fast-check arbitraries for every message type, shared by the codec, validation and fuzz tests.
 * Only test files import this module.
 */
import fc from 'fast-check';
import type {
  AckMessage,
  AuthMessage,
  CompressedMessage,
  Epoch,
  ErrorMessage,
  HelloMessage,
  ManifestEntry,
  ManifestMessage,
  Message,
  MessageOf,
  MessageType,
  NeedMessage,
  Op,
  OpMessage,
  OpsMessage,
  WelcomeMessage,
  WriteOp,
} from './messages.js';
import { CODECS, PROTOCOL_VERSION } from './messages.js';

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Characters that real file names hold and naive path code gets wrong. */
const ODD_CHARS = ['a', 'Z', '0', '-', ' ', '\n', '\t', '.', '\\', ':', '*', 'é', '日', '😀', '\u200b'];

export const nodeIdArb: fc.Arbitrary<string> = fc.string({
  unit: fc.constantFrom(...'abcXYZ019._-'.split('')),
  minLength: 1,
  maxLength: 64,
});

export const epochArb: fc.Arbitrary<Epoch> = fc.record({ term: fc.maxSafeNat(), node: nodeIdArb });
export const seqArb: fc.Arbitrary<number> = fc.maxSafeNat();
export const modeArb: fc.Arbitrary<number> = fc.integer({ min: 0, max: 0o7777 });
const idArb = fc.integer({ min: 0, max: 0xfffffffe });
// `+ 0` turns -0 into 0: msgpack has no negative zero integer, and 0 round-trips as 0.
export const mtimeArb: fc.Arbitrary<number> = fc
  .oneof(fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 2 ** 45 }))
  .map((n) => n + 0);
export const hashArb: fc.Arbitrary<string> = fc
  .bigInt({ min: 0n, max: 2n ** 64n - 1n })
  .map((n) => n.toString(16).padStart(16, '0'));

const segmentArb: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
    fc.string({ unit: fc.constantFrom(...ODD_CHARS), minLength: 1, maxLength: 10 }),
  )
  .filter((s) => !s.includes('/') && !s.includes('\0') && s !== '.' && s !== '..' && utf8Length(s) <= 255);

/** Relative, normalised POSIX paths, with odd but legal characters. */
export const pathArb: fc.Arbitrary<string> = fc
  .array(segmentArb, { minLength: 1, maxLength: 5 })
  .filter((segments) => segments[0] !== '.mimic')
  .map((segments) => segments.join('/'));

export const targetArb: fc.Arbitrary<string> = fc
  .string({ unit: 'binary', minLength: 1, maxLength: 40 })
  .filter((s) => !s.includes('\0'));

export const bytesArb = (maxLength: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength });

const writeArb: fc.Arbitrary<WriteOp> = fc
  .tuple(
    fc.record({
      kind: fc.constant('write' as const),
      path: pathArb,
      mode: modeArb,
      mtimeMs: mtimeArb,
      size: fc.maxSafeNat(),
      hash: hashArb,
      part: fc.maxSafeNat(),
      last: fc.boolean(),
      data: bytesArb(64),
    }),
    fc.option(hashArb, { nil: undefined }),
  )
  .map(([op, baseHash]) =>
    baseHash === undefined
      ? { ...op, encoding: 'full' as const }
      : { ...op, encoding: 'delta' as const, baseHash },
  );

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('mkdir' as const), path: pathArb, mode: modeArb, mtimeMs: mtimeArb }),
  fc.record({ kind: fc.constant('symlink' as const), path: pathArb, target: targetArb, mtimeMs: mtimeArb }),
  writeArb,
  fc.record({ kind: fc.constant('delete' as const), path: pathArb }),
  fc.record({ kind: fc.constant('rename' as const), from: pathArb, to: pathArb }),
  fc.record(
    {
      kind: fc.constant('meta' as const),
      path: pathArb,
      mode: modeArb,
      mtimeMs: mtimeArb,
      uid: idArb,
      gid: idArb,
      mtimeNs: fc.integer({ min: 0, max: 999_999 }),
      xattrs: bytesArb(64),
    },
    { requiredKeys: ['kind', 'path', 'mode', 'mtimeMs'] },
  ),
  fc.record({ kind: fc.constant('link' as const), path: pathArb, target: pathArb }),
);

const entryBase = { path: pathArb, size: fc.maxSafeNat(), mtimeMs: mtimeArb, mode: modeArb };

export const manifestEntryArb: fc.Arbitrary<ManifestEntry> = fc.oneof(
  fc
    .tuple(
      fc.record({ ...entryBase, kind: fc.constant('file' as const) }),
      fc.option(hashArb, { nil: undefined }),
    )
    .map(([entry, hash]) => (hash === undefined ? entry : { ...entry, hash })),
  fc.record({ ...entryBase, kind: fc.constant('file' as const), hash: hashArb, link: pathArb }),
  fc.record({ ...entryBase, kind: fc.constant('dir' as const) }),
  fc.record({ ...entryBase, kind: fc.constant('symlink' as const), target: targetArb }),
);

const listenUrlArb: fc.Arbitrary<string> = fc.webUrl().map((url) => url.replace(/^http/, 'ws'));

export const MESSAGE_ARBITRARIES: { readonly [T in MessageType]: fc.Arbitrary<MessageOf<T>> } = {
  hello: fc.record(
    {
      type: fc.constant('hello' as const),
      protocol: fc.constant('mimic' as const),
      version: fc.constant(PROTOCOL_VERSION),
      nodeId: nodeIdArb,
      role: fc.constantFrom('primary' as const, 'mirror' as const, 'fenced' as const),
      epoch: epochArb,
      appliedSeq: seqArb,
      nonce: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      listenUrl: listenUrlArb,
      fresh: fc.boolean(),
      folder: fc.stringMatching(/^[0-9a-f]{32}$/),
      codecs: fc.uniqueArray(fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,15}$/), { minLength: 1, maxLength: 8 }),
      compress: fc.boolean(),
    },
    { requiredKeys: ['type', 'protocol', 'version', 'nodeId', 'role', 'epoch', 'appliedSeq', 'nonce'] },
  ) satisfies fc.Arbitrary<HelloMessage>,
  auth: fc.record({
    type: fc.constant('auth' as const),
    proof: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  }) satisfies fc.Arbitrary<AuthMessage>,
  welcome: fc.record(
    {
      type: fc.constant('welcome' as const),
      epoch: epochArb,
      seq: seqArb,
      mode: fc.constantFrom('resume' as const, 'reconcile' as const),
      codec: fc.constantFrom(...CODECS),
    },
    { requiredKeys: ['type', 'epoch', 'seq', 'mode'] },
  ) satisfies fc.Arbitrary<WelcomeMessage>,
  op: fc.record({
    type: fc.constant('op' as const),
    epoch: epochArb,
    seq: seqArb,
    op: opArb,
  }) satisfies fc.Arbitrary<OpMessage>,
  ops: fc.array(fc.tuple(seqArb, opArb), { minLength: 1, maxLength: 6 }).chain((items) =>
    fc.record({
      type: fc.constant('ops' as const),
      epoch: epochArb,
      seqs: fc.constant(items.map(([seq]) => seq).sort((a, b) => a - b)),
      ops: fc.constant(items.map(([, op]) => op)),
    }),
  ) satisfies fc.Arbitrary<OpsMessage>,
  ack: fc.record({
    type: fc.constant('ack' as const),
    epoch: epochArb,
    seq: seqArb,
  }) satisfies fc.Arbitrary<AckMessage>,
  manifest: fc.record({
    type: fc.constant('manifest' as const),
    epoch: epochArb,
    entries: fc.array(manifestEntryArb, { maxLength: 8 }),
    last: fc.boolean(),
  }) satisfies fc.Arbitrary<ManifestMessage>,
  need: fc.record(
    { type: fc.constant('need' as const), epoch: epochArb, path: pathArb, signature: bytesArb(64) },
    { requiredKeys: ['type', 'epoch', 'path'] },
  ) satisfies fc.Arbitrary<NeedMessage>,
  compressed: fc.record({
    type: fc.constant('compressed' as const),
    codec: fc.constantFrom(...CODECS),
    rawLength: fc.integer({ min: 1, max: 8 * 1024 * 1024 }),
    data: bytesArb(64),
  }) satisfies fc.Arbitrary<CompressedMessage>,
  error: fc.record({
    type: fc.constant('error' as const),
    code: fc.string({ minLength: 1, maxLength: 64 }),
    message: fc.string({ unit: 'binary', maxLength: 200 }),
  }) satisfies fc.Arbitrary<ErrorMessage>,
};

/** Any message of any type. */
export const messageArb: fc.Arbitrary<Message> = fc.oneof(
  ...Object.values(MESSAGE_ARBITRARIES as Record<MessageType, fc.Arbitrary<Message>>),
);
