import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hashToHex, strongHash } from '@mimic/delta';
import { decode, type Epoch, encode, type Message, makeHello, type Op } from '@mimic/wire';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type WebSocket from 'ws';
import { type FileRecord, Store } from '../node/store.js';
import { BATCH_OPS } from './op-batcher.js';
import { RecentContent } from './recent-content.js';
import { MirrorSession, type SessionContext } from './session.js';

/**
 * A WebSocket that goes nowhere: it records what the session sends (fragments joined into the
 * message they carry) and hands it the mirror's messages.
 */
class FakeWs extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  binaryType = 'nodebuffer';
  readonly sent: Message[] = [];
  #fragments: Buffer[] = [];
  closedWith: { code: number; reason: string } | null = null;

  send(data: Uint8Array, a?: unknown, b?: unknown): void {
    const cb = (typeof a === 'function' ? a : b) as (() => void) | undefined;
    const fin = typeof a === 'object' && a !== null ? (a as { fin?: boolean }).fin !== false : true;
    this.#fragments.push(Buffer.from(data));
    if (fin) {
      this.sent.push(decode(Buffer.concat(this.#fragments)));
      this.#fragments = [];
    }
    cb?.();
  }

  ping(): void {}

  terminate(): void {
    this.close(1006, '');
  }

  close(code: number, reason: string): void {
    if (this.readyState !== 1) return;
    this.readyState = 3;
    this.closedWith = { code, reason };
    this.emit('close', code, Buffer.from(reason));
  }

  /** A message from the mirror. */
  deliver(msg: Message): void {
    this.emit('message', encode(msg), true);
  }
}

const epoch: Epoch = { term: 2, node: 'primary-1' };
const FOLDER = '0123456789abcdef0123456789abcdef';

interface Fixture {
  root: string;
  store: Store;
  tracker: SessionContext['tracker'];
  ws: FakeWs;
  acks: number[];
  connect(): MirrorSession;
  /** Journals an op the way the tracker does, and tells the session. */
  journal(op: Parameters<Store['append']>[2]): void;
  /** Writes a file, puts it in the manifest and journals its write. */
  write(path: string, content: Uint8Array, prevHash?: string): string;
}

let fx: Fixture;
let session: MirrorSession | null = null;

beforeEach(() => {
  const root = mkdtempSync(join(tmpdir(), 'mimic-session-'));
  const store = new Store(join(root, 'state.db'));
  const tracker = {
    manifest: new Map<string, FileRecord>(),
    recent: new RecentContent(64 << 20),
    lastSeq: 0,
    busy: false,
    xattrs: { announced: undefined },
    images: { has: () => false, fileOf: () => null },
  };
  const ws = new FakeWs();
  const acks: number[] = [];
  const ctx: SessionContext = {
    nodeId: 'primary-1',
    folderId: FOLDER,
    root,
    store,
    tracker,
    epoch: () => epoch,
    hello: (nonce) =>
      makeHello({
        nodeId: 'primary-1',
        role: 'primary',
        epoch,
        appliedSeq: tracker.lastSeq,
        nonce,
        folder: FOLDER,
      }),
    fork: () => undefined,
    fenced: () => false,
    token: null,
    refused: () => {},
    learnEpoch: () => {},
    log: () => {},
    onAck: (s) => acks.push(s.ackedSeq),
    onClose: () => {},
  };
  fx = {
    root,
    store,
    tracker,
    ws,
    acks,
    connect: () => (session = new MirrorSession(ws as unknown as WebSocket, ctx, 'test')),
    journal(op) {
      tracker.lastSeq += 1;
      store.append(tracker.lastSeq, epoch, op);
      session?.poke();
    },
    write(path, content, prevHash) {
      writeFileSync(join(root, path), content);
      const hash = hashToHex(strongHash(content));
      const rec: FileRecord = {
        path,
        kind: 'file',
        size: content.length,
        mtimeMs: 1000,
        mode: 0o644,
        hash,
        ino: 1,
        ctimeMs: 1000,
      };
      tracker.manifest.set(path, rec);
      this.journal({
        kind: 'write',
        path,
        mode: 0o644,
        mtimeMs: 1000,
        size: content.length,
        hash,
        ...(prevHash ? { prevHash } : {}),
      });
      return hash;
    },
  };
});

afterEach(() => {
  session?.socket.close(1001, 'test over');
  session = null;
  fx.store.close();
  rmSync(fx.root, { recursive: true, force: true });
});

async function waitFor<T>(what: string, predicate: () => T, timeoutMs = 5000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = predicate();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A fresh mirror's hello: it streams the journal from its first row. */
function freshMirrorHello(): Message {
  return makeHello({ nodeId: 'mirror-1', role: 'mirror', epoch, appliedSeq: 0, fresh: true, folder: FOLDER });
}

/** The ops the session sent, with their sequence numbers, in the order they left. */
function opsSent(ws: FakeWs): { seq: number; op: Op }[] {
  return ws.sent.flatMap((m) =>
    m.type === 'op'
      ? [{ seq: m.seq, op: m.op }]
      : m.type === 'ops'
        ? m.ops.map((op, i) => ({ seq: m.seqs[i]!, op }))
        : [],
  );
}

const mkdir = (i: number): Op => ({
  kind: 'mkdir',
  path: `d${String(i).padStart(4, '0')}`,
  mode: 0o755,
  mtimeMs: 0,
});
const contentOf = (fill: number, bytes = 16 * 1024) => new Uint8Array(bytes).fill(fill);

describe('MirrorSession', () => {
  test('sends its hello first, with its own nonce, and welcomes a fresh mirror by resume', async () => {
    fx.connect();
    const hello = fx.ws.sent[0];
    expect(hello?.type).toBe('hello');
    expect(hello?.type === 'hello' && hello.nonce.length).toBe(32);
    fx.ws.deliver(freshMirrorHello());
    await waitFor('welcome', () => fx.ws.sent.find((m) => m.type === 'welcome'));
    expect(fx.ws.sent[1]).toEqual({ type: 'welcome', epoch, seq: 0, mode: 'resume' });
    expect(session?.state).toBe('streaming');
  });

  test('journal rows leave batched, at most BATCH_OPS per message, in sequence order', async () => {
    const n = BATCH_OPS * 2 + 44;
    for (let i = 1; i <= n; i++) fx.journal(mkdir(i));
    fx.connect();
    fx.ws.deliver(freshMirrorHello());
    await waitFor('every row', () => opsSent(fx.ws).length === n);
    const opMessages = fx.ws.sent.filter((m) => m.type === 'op' || m.type === 'ops');
    expect(opMessages.every((m) => m.type === 'ops' && m.ops.length <= BATCH_OPS)).toBe(true);
    expect(opMessages.length).toBe(3);
    expect(opsSent(fx.ws).map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(opsSent(fx.ws).map((e) => e.op)).toEqual(Array.from({ length: n }, (_, i) => mkdir(i + 1)));
    // Rows journaled later follow, after the mirror's ack.
    fx.ws.deliver({ type: 'ack', epoch, seq: n });
    expect(session?.ackedSeq).toBe(n);
    expect(fx.acks).toEqual([n]);
    fx.journal(mkdir(n + 1));
    await waitFor('the later row', () => opsSent(fx.ws).length === n + 1);
    expect(fx.ws.sent.at(-1)).toEqual({ type: 'op', epoch, seq: n + 1, op: mkdir(n + 1) });
  });

  test('a file sent whole is signed once the mirror is quiet; its next change goes as a delta', async () => {
    fx.connect();
    fx.ws.deliver(freshMirrorHello());
    const v1 = fx.write('a.bin', contentOf(1));
    await waitFor('the first version', () => opsSent(fx.ws).length === 1);
    const first = opsSent(fx.ws)[0]!.op;
    expect(first).toMatchObject({ kind: 'write', path: 'a.bin', encoding: 'full', hash: v1 });
    // Not acknowledged yet: nothing is signed while the mirror is behind.
    await new Promise((r) => setTimeout(r, 250));
    expect(fx.store.getSignature(v1)).toBeUndefined();
    fx.ws.deliver({ type: 'ack', epoch, seq: 1 });
    await waitFor('the signature of the first version', () => fx.store.getSignature(v1));
    const v2 = fx.write('a.bin', new Uint8Array([...contentOf(1), 9, 9, 9]), v1);
    await waitFor('the second version', () => opsSent(fx.ws).length === 2);
    expect(opsSent(fx.ws)[1]).toMatchObject({
      seq: 2,
      op: { kind: 'write', path: 'a.bin', encoding: 'delta', baseHash: v1, hash: v2, last: true },
    });
  });

  test('a change that needs a signature not made yet has it made at once', async () => {
    fx.connect();
    fx.ws.deliver(freshMirrorHello());
    const v1 = fx.write('b.bin', contentOf(2));
    await waitFor('the first version', () => opsSent(fx.ws).length === 1);
    // No ack, so never quiet: the signature is made when the next change asks for it.
    const v2 = fx.write('b.bin', new Uint8Array([7, ...contentOf(2)]), v1);
    await waitFor('the second version', () => opsSent(fx.ws).length === 2);
    expect(opsSent(fx.ws)[1]!.op).toMatchObject({ kind: 'write', encoding: 'delta', baseHash: v1, hash: v2 });
    expect(fx.store.getSignature(v1)).toBeDefined();
  });

  test('needs during reconcile are answered in turn at the snapshot sequence; its ack starts streaming', async () => {
    fx.write('c.bin', contentOf(3));
    fx.journal(mkdir(1));
    fx.connect();
    fx.ws.deliver(makeHello({ nodeId: 'mirror-1', role: 'mirror', epoch, appliedSeq: 0, folder: FOLDER }));
    await waitFor('the manifest', () => fx.ws.sent.find((m) => m.type === 'manifest'));
    expect(session?.state).toBe('reconcile');
    expect(fx.ws.sent[1]).toEqual({ type: 'welcome', epoch, seq: 2, mode: 'reconcile' });
    fx.ws.deliver({ type: 'need', epoch, path: 'c.bin' });
    fx.ws.deliver({ type: 'need', epoch, path: 'gone' });
    await waitFor('both answers', () => opsSent(fx.ws).length === 2);
    expect(opsSent(fx.ws).map((e) => [e.seq, e.op.kind, 'path' in e.op ? e.op.path : null])).toEqual([
      [2, 'write', 'c.bin'],
      [2, 'delete', 'gone'],
    ]);
    fx.ws.deliver({ type: 'ack', epoch, seq: 2 });
    expect(session?.state).toBe('streaming');
  });

  test('an ack from another epoch closes the session', async () => {
    fx.connect();
    fx.ws.deliver(freshMirrorHello());
    fx.ws.deliver({ type: 'ack', epoch: { term: 1, node: 'old' }, seq: 0 });
    expect(fx.ws.closedWith?.reason).toMatch(/^ERR_EPOCH/);
    expect(session?.state).toBe('closed');
  });
});
