import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WireError } from './errors.js';
import { resolveLimits } from './limits.js';
import {
  MAX_OPS_PER_MESSAGE,
  MAX_XATTRS_BYTES,
  type Message,
  type MessageType,
  type OpMessage,
  PROTOCOL_VERSION,
} from './messages.js';
import { messageArb } from './test-arbitraries.js';
import { validateMessage } from './validate.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof WireError) return err.code;
    throw err;
  }
  return 'no error';
}

const epoch = { term: 2, node: 'node-a' };
const hash = '00ff00ff00ff00ff';

const VALID: { readonly [T in MessageType]: Message } = {
  hello: {
    type: 'hello',
    protocol: 'mimic',
    version: PROTOCOL_VERSION,
    nodeId: 'node-a',
    role: 'mirror',
    epoch,
    appliedSeq: 10,
    nonce: new Uint8Array(32),
    listenUrl: 'ws://127.0.0.1:7070/',
    folder: '0123456789abcdef0123456789abcdef',
  },
  auth: { type: 'auth', proof: new Uint8Array(32) },
  welcome: { type: 'welcome', epoch, seq: 10, mode: 'resume' },
  op: {
    type: 'op',
    epoch,
    seq: 11,
    op: {
      kind: 'write',
      path: 'docs/a.txt',
      mode: 0o644,
      mtimeMs: 1.5,
      size: 3,
      hash,
      encoding: 'delta',
      baseHash: hash,
      part: 0,
      last: true,
      data: Uint8Array.of(1, 2, 3),
    },
  },
  ops: {
    type: 'ops',
    epoch,
    seqs: [12, 12, 13],
    ops: [
      { kind: 'mkdir', path: 'd', mode: 0o755, mtimeMs: 0 },
      { kind: 'delete', path: 'old' },
      {
        kind: 'write',
        path: 'd/b.txt',
        mode: 0o644,
        mtimeMs: 2,
        size: 2,
        hash,
        encoding: 'full',
        part: 0,
        last: true,
        data: Uint8Array.of(4, 5),
      },
    ],
  },
  ack: { type: 'ack', epoch, seq: 11 },
  manifest: {
    type: 'manifest',
    epoch,
    entries: [
      { path: 'a', kind: 'file', size: 1, mtimeMs: 0, mode: 0o600, hash },
      { path: 'd', kind: 'dir', size: 0, mtimeMs: 0, mode: 0o755 },
      { path: 'l', kind: 'symlink', size: 1, mtimeMs: 0, mode: 0o777, target: 'a' },
    ],
    last: true,
  },
  need: { type: 'need', epoch, path: 'a', signature: new Uint8Array(8) },
  compressed: { type: 'compressed', codec: 'deflate', rawLength: 100, data: new Uint8Array(20) },
  error: { type: 'error', code: 'ERR_FENCED', message: 'a newer primary exists' },
};

const REMOVE = Symbol('remove');

/** A copy of the valid message of `type` with the field at dotted `path` set to `value`. */
function withField(type: MessageType, path: string, value: unknown): unknown {
  const copy = structuredClone(VALID[type]) as unknown as Record<string, unknown>;
  const keys = path.split('.');
  const last = keys.pop() as string;
  let target: Record<string, unknown> = copy;
  for (const key of keys) target = target[key] as Record<string, unknown>;
  if (value === REMOVE) delete target[last];
  else target[last] = value;
  return copy;
}

describe('validateMessage', () => {
  it('accepts the sample of every type, and every generated message', () => {
    for (const msg of Object.values(VALID)) expect(validateMessage(msg)).toBe(msg);
    fc.assert(fc.property(messageArb, (msg) => validateMessage(msg) === msg));
  });

  it.each([
    ['hello', 'version', PROTOCOL_VERSION + 1, 'ERR_PROTOCOL_VERSION'],
    ['hello', 'protocol', 'rsync', 'ERR_PROTOCOL_VERSION'],
    ['hello', 'protocol', REMOVE, 'ERR_BAD_MESSAGE'],
    ['hello', 'version', '1', 'ERR_BAD_MESSAGE'],
    ['hello', 'nodeId', '', 'ERR_BAD_MESSAGE'],
    ['hello', 'nodeId', 'a b', 'ERR_BAD_MESSAGE'],
    ['hello', 'nodeId', 'n'.repeat(65), 'ERR_BAD_MESSAGE'],
    ['hello', 'role', 'leader', 'ERR_BAD_MESSAGE'],
    ['hello', 'nonce', new Uint8Array(31), 'ERR_BAD_MESSAGE'],
    ['hello', 'nonce', Array.from({ length: 32 }, () => 0), 'ERR_BAD_MESSAGE'],
    ['hello', 'listenUrl', 'http://127.0.0.1:7070', 'ERR_BAD_MESSAGE'],
    ['hello', 'fresh', 'yes', 'ERR_BAD_MESSAGE'],
    ['hello', 'folder', '0123456789ABCDEF0123456789ABCDEF', 'ERR_BAD_MESSAGE'],
    ['hello', 'folder', 'abc', 'ERR_BAD_MESSAGE'],
    ['hello', 'folder', '../0123456789abcdef0123456789abc', 'ERR_BAD_MESSAGE'],
    ['hello', 'listenUrl', 'not a url', 'ERR_BAD_MESSAGE'],
    ['hello', 'listenUrl', '', 'ERR_BAD_MESSAGE'],
    ['hello', 'appliedSeq', -1, 'ERR_BAD_MESSAGE'],
    ['hello', 'appliedSeq', 1.5, 'ERR_BAD_MESSAGE'],
    ['hello', 'appliedSeq', 2 ** 53, 'ERR_BAD_MESSAGE'],
    ['hello', 'appliedSeq', Number.NaN, 'ERR_BAD_MESSAGE'],
    ['hello', 'appliedSeq', 10n, 'ERR_BAD_MESSAGE'],
    ['hello', 'epoch', REMOVE, 'ERR_BAD_MESSAGE'],
    ['hello', 'epoch.term', -1, 'ERR_BAD_MESSAGE'],
    ['hello', 'epoch.node', 'bad/node', 'ERR_BAD_MESSAGE'],
    ['hello', 'epoch.extra', 1, 'ERR_BAD_MESSAGE'],
    ['hello', 'extra', 'x', 'ERR_BAD_MESSAGE'],
    ['hello', 'codecs', [], 'ERR_BAD_MESSAGE'],
    ['hello', 'codecs', 'brotli', 'ERR_BAD_MESSAGE'],
    ['hello', 'codecs', ['brotli', 'brotli'], 'ERR_BAD_MESSAGE'],
    ['hello', 'codecs', ['Brotli'], 'ERR_BAD_MESSAGE'],
    ['hello', 'codecs', Array.from({ length: 9 }, (_, i) => `c${i}`), 'ERR_BAD_MESSAGE'],
    ['hello', 'compress', 1, 'ERR_BAD_MESSAGE'],
    ['welcome', 'codec', 'lz4', 'ERR_BAD_MESSAGE'],
    ['compressed', 'codec', 'gzip', 'ERR_BAD_MESSAGE'],
    ['compressed', 'rawLength', 0, 'ERR_BAD_MESSAGE'],
    ['compressed', 'rawLength', 8 * 1024 * 1024 + 1, 'ERR_TOO_LARGE'],
    ['compressed', 'data', REMOVE, 'ERR_BAD_MESSAGE'],
    ['auth', 'proof', new Uint8Array(33), 'ERR_BAD_MESSAGE'],
    ['auth', 'proof', 'a'.repeat(32), 'ERR_BAD_MESSAGE'],
    ['welcome', 'mode', 'rewind', 'ERR_BAD_MESSAGE'],
    ['welcome', 'seq', REMOVE, 'ERR_BAD_MESSAGE'],
    ['ops', 'seqs', [12, 13], 'ERR_BAD_MESSAGE'],
    ['ops', 'seqs', [12, 11, 13], 'ERR_BAD_MESSAGE'],
    ['ops', 'seqs', [12, -1, 13], 'ERR_BAD_MESSAGE'],
    ['ops', 'ops', [], 'ERR_BAD_MESSAGE'],
    ['ops', 'ops', 'mkdir', 'ERR_BAD_MESSAGE'],
    ['ops', 'ops.1.path', '../escape', 'ERR_BAD_PATH'],
    ['ops', 'ops.0.kind', 'chmod', 'ERR_UNKNOWN_TYPE'],
    ['op', 'seq', -1, 'ERR_BAD_MESSAGE'],
    ['op', 'op', null, 'ERR_BAD_MESSAGE'],
    ['op', 'op.kind', 'chmod', 'ERR_UNKNOWN_TYPE'],
    ['op', 'op.kind', REMOVE, 'ERR_BAD_MESSAGE'],
    ['op', 'op.path', '../x', 'ERR_BAD_PATH'],
    ['op', 'op.path', '/abs', 'ERR_BAD_PATH'],
    ['op', 'op.path', '.mimic/state', 'ERR_BAD_PATH'],
    ['op', 'op.hash', '00FF00FF00FF00FF', 'ERR_BAD_MESSAGE'],
    ['op', 'op.hash', '00ff00ff00ff00f', 'ERR_BAD_MESSAGE'],
    ['op', 'op.baseHash', REMOVE, 'ERR_BAD_MESSAGE'],
    ['op', 'op.encoding', 'full', 'ERR_BAD_MESSAGE'],
    ['op', 'op.encoding', 'gzip', 'ERR_BAD_MESSAGE'],
    ['op', 'op.mode', 0o10000, 'ERR_BAD_MESSAGE'],
    ['op', 'op.mode', -1, 'ERR_BAD_MESSAGE'],
    ['op', 'op.mtimeMs', Number.POSITIVE_INFINITY, 'ERR_BAD_MESSAGE'],
    ['op', 'op.mtimeMs', Number.NaN, 'ERR_BAD_MESSAGE'],
    ['op', 'op.mtimeMs', -1, 'ERR_BAD_MESSAGE'],
    ['op', 'op.size', 2 ** 53, 'ERR_BAD_MESSAGE'],
    ['op', 'op.part', -1, 'ERR_BAD_MESSAGE'],
    ['op', 'op.last', 'yes', 'ERR_BAD_MESSAGE'],
    ['op', 'op.data', [1, 2, 3], 'ERR_BAD_MESSAGE'],
    ['op', 'op.data', new Uint16Array(3), 'ERR_BAD_MESSAGE'],
    ['op', 'op.target', 'x', 'ERR_BAD_MESSAGE'],
    ['op', 'op.offset', 0, 'ERR_BAD_MESSAGE'],
    ['op', 'op.mtimeNs', 1_000_000, 'ERR_BAD_MESSAGE'],
    ['op', 'op.mtimeNs', 0.5, 'ERR_BAD_MESSAGE'],
    ['op', 'op.xattrs', 'user.a', 'ERR_BAD_MESSAGE'],
    ['op', 'op.xattrs', new Uint8Array(MAX_XATTRS_BYTES + 1), 'ERR_TOO_LARGE'],
    ['welcome', 'xattrs', { acls: true }, 'ERR_BAD_MESSAGE'],
    ['ack', 'seq', 1.5, 'ERR_BAD_MESSAGE'],
    ['manifest', 'entries', {}, 'ERR_BAD_MESSAGE'],
    ['manifest', 'entries.0.kind', 'fifo', 'ERR_BAD_MESSAGE'],
    ['manifest', 'entries.0.path', 'a/', 'ERR_BAD_PATH'],
    ['manifest', 'entries.1.hash', hash, 'ERR_BAD_MESSAGE'],
    ['manifest', 'entries.0.target', 'b', 'ERR_BAD_MESSAGE'],
    ['manifest', 'entries.2.target', REMOVE, 'ERR_BAD_MESSAGE'],
    ['manifest', 'entries.2.target', 'a\0b', 'ERR_BAD_PATH'],
    ['manifest', 'entries.1.link', 'a', 'ERR_BAD_MESSAGE'],
    ['manifest', 'entries.0.link', '../a', 'ERR_BAD_PATH'],
    ['manifest', 'last', REMOVE, 'ERR_BAD_MESSAGE'],
    ['need', 'path', '', 'ERR_BAD_PATH'],
    ['need', 'signature', 'sig', 'ERR_BAD_MESSAGE'],
    ['error', 'code', '', 'ERR_BAD_MESSAGE'],
    ['error', 'code', 'E'.repeat(65), 'ERR_BAD_MESSAGE'],
    ['error', 'message', 'm'.repeat(4097), 'ERR_BAD_MESSAGE'],
    ['error', 'message', 'lone \udc00', 'ERR_BAD_MESSAGE'],
  ] as const)('%s.%s = %o gives %s', (type, path, value, code) => {
    expect(codeOf(() => validateMessage(withField(type, path, value)))).toBe(code);
  });

  it('places a full write part by its offset only within the file', () => {
    const part = { ...(VALID.op as OpMessage).op, encoding: 'full', baseHash: undefined, size: 10 };
    const msg = (o: object) => ({ ...VALID.op, op: { ...part, ...o } });
    expect(codeOf(() => validateMessage(msg({ offset: 7 })))).toBe('no error');
    expect(codeOf(() => validateMessage(msg({ offset: 8 })))).toBe('ERR_BAD_MESSAGE');
  });

  it('a link names two paths inside the folder', () => {
    const link = { type: 'op', epoch, seq: 1, op: { kind: 'link', path: 'a', target: 'b/c' } };
    expect(codeOf(() => validateMessage(link))).toBe('no error');
    expect(codeOf(() => validateMessage({ ...link, op: { ...link.op, target: '../c' } }))).toBe(
      'ERR_BAD_PATH',
    );
  });

  it('checks a write op of each kind against its own fields', () => {
    const rename = { type: 'op', epoch, seq: 1, op: { kind: 'rename', from: 'a', to: 'b' } };
    expect(codeOf(() => validateMessage(rename))).toBe('no error');
    expect(codeOf(() => validateMessage({ ...rename, op: { ...rename.op, to: '.mimic/x' } }))).toBe(
      'ERR_BAD_PATH',
    );
    expect(codeOf(() => validateMessage({ ...rename, op: { ...rename.op, path: 'a' } }))).toBe(
      'ERR_BAD_MESSAGE',
    );
    const full = withField('op', 'op.encoding', 'full') as { op: Record<string, unknown> };
    delete full.op.baseHash;
    expect(codeOf(() => validateMessage(full))).toBe('no error');
  });

  it('caps the ops of one ops message', () => {
    const op = { kind: 'delete', path: 'x' };
    const ops = (n: number) => ({ type: 'ops', epoch, seqs: Array(n).fill(1), ops: Array(n).fill(op) });
    expect(codeOf(() => validateMessage(ops(MAX_OPS_PER_MESSAGE)))).toBe('no error');
    expect(codeOf(() => validateMessage(ops(MAX_OPS_PER_MESSAGE + 1)))).toBe('ERR_TOO_LARGE');
  });

  it('takes codec names it does not know in a hello, for peers that know more', () => {
    const hello = { ...VALID.hello, codecs: ['lz4', 'brotli'], compress: true };
    expect(codeOf(() => validateMessage(hello))).toBe('no error');
  });

  it('reports another version even when the rest of the hello is unknown', () => {
    const future = { type: 'hello', protocol: 'mimic', version: PROTOCOL_VERSION + 1, capabilities: ['x'] };
    expect(codeOf(() => validateMessage(future))).toBe('ERR_PROTOCOL_VERSION');
  });

  it.each([
    ['null', null],
    ['an array', [VALID.ack]],
    ['a string', 'ack'],
    ['a Map', new Map([['type', 'ack']])],
    ['a class instance', Object.assign(new (class Ack {})(), VALID.ack)],
    ['a numeric type', { type: 5 }],
  ])('refuses %s as ERR_BAD_MESSAGE', (_name, value) => {
    expect(codeOf(() => validateMessage(value))).toBe('ERR_BAD_MESSAGE');
  });

  it.each(['nope', 'toString', '__proto__', 'HELLO'])('refuses type %s as ERR_UNKNOWN_TYPE', (type) => {
    expect(codeOf(() => validateMessage({ type }))).toBe('ERR_UNKNOWN_TYPE');
  });

  it('accepts absent and undefined optional fields, and null-prototype objects', () => {
    const { listenUrl: _omit, ...hello } = VALID.hello as Extract<Message, { type: 'hello' }>;
    expect(codeOf(() => validateMessage(hello))).toBe('no error');
    expect(codeOf(() => validateMessage({ ...hello, listenUrl: undefined }))).toBe('no error');
    expect(codeOf(() => validateMessage(Object.assign(Object.create(null), VALID.ack)))).toBe('no error');
  });

  it('applies maxPathBytes and maxManifestEntries', () => {
    expect(codeOf(() => validateMessage(VALID.need, { maxPathBytes: 1 }))).toBe('no error');
    const need = { ...VALID.need, path: 'ab' };
    expect(codeOf(() => validateMessage(need, { maxPathBytes: 1 }))).toBe('ERR_BAD_PATH');
    expect(codeOf(() => validateMessage(VALID.manifest, { maxManifestEntries: 3 }))).toBe('no error');
    expect(codeOf(() => validateMessage(VALID.manifest, { maxManifestEntries: 2 }))).toBe('ERR_TOO_LARGE');
  });
});

describe('resolveLimits', () => {
  it('fills in defaults and freezes', () => {
    const limits = resolveLimits({ maxPathBytes: 100 });
    expect(limits).toEqual({
      maxMessageBytes: 8 * 1024 * 1024,
      maxPathBytes: 100,
      maxManifestEntries: 10_000,
    });
    expect(Object.isFrozen(limits)).toBe(true);
    expect(resolveLimits(limits)).toBe(limits);
  });

  it.each([
    { maxMessageBytes: 0 },
    { maxMessageBytes: 1.5 },
    { maxManifestEntries: -1 },
    { maxPathBytes: 4097 },
    { maxPathBytes: Number.NaN },
  ])('throws TypeError for %o', (options) => {
    expect(() => resolveLimits(options)).toThrow(TypeError);
  });
});
