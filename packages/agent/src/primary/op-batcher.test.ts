import type { Epoch, Op, OpMessage, OpsMessage, WriteOp } from '@mimic/wire';
import { describe, expect, test } from 'vitest';
import { BATCH_BYTES, BATCH_FILE_BYTES, BATCH_OPS, OpBatcher } from './op-batcher.js';

const epoch: Epoch = { term: 3, node: 'p1' };

function recorder() {
  const sent: (OpMessage | OpsMessage)[] = [];
  const batcher = new OpBatcher(
    async (m) => {
      sent.push(m);
    },
    () => epoch,
  );
  /** Every op sent, with its sequence number, in the order the messages carry them. */
  const flat = () =>
    sent.flatMap((m) =>
      m.type === 'op' ? [{ seq: m.seq, op: m.op }] : m.ops.map((op, i) => ({ seq: m.seqs[i]!, op })),
    );
  return { sent, batcher, flat };
}

const mkdir = (i: number): Op => ({ kind: 'mkdir', path: `d${i}`, mode: 0o755, mtimeMs: 0 });
const whole = (path: string, bytes: number): WriteOp => ({
  kind: 'write',
  path,
  mode: 0o644,
  mtimeMs: 0,
  size: bytes,
  hash: '0000000000000000',
  encoding: 'full',
  part: 0,
  last: true,
  data: new Uint8Array(bytes),
});

describe('OpBatcher', () => {
  test('small ops leave in ops messages of at most BATCH_OPS, in sequence order', async () => {
    const { sent, batcher, flat } = recorder();
    const n = BATCH_OPS * 2 + 10;
    for (let i = 1; i <= n; i++) await batcher.send(i, mkdir(i));
    expect(sent.map((m) => m.type)).toEqual(['ops', 'ops']);
    expect(batcher.pending).toBe(10);
    await batcher.flush();
    expect(sent.map((m) => (m.type === 'ops' ? m.ops.length : 1))).toEqual([BATCH_OPS, BATCH_OPS, 10]);
    expect(flat().map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(sent.every((m) => m.epoch === epoch)).toBe(true);
  });

  test('a batch leaves once its content reaches BATCH_BYTES', async () => {
    const { sent, batcher, flat } = recorder();
    const n = Math.ceil((2 * BATCH_BYTES) / BATCH_FILE_BYTES) + 1;
    for (let i = 1; i <= n; i++) await batcher.send(i, whole(`f${i}`, BATCH_FILE_BYTES));
    await batcher.flush();
    const perFile = BATCH_BYTES / BATCH_FILE_BYTES;
    for (const m of sent) {
      const ops = m.type === 'ops' ? m.ops : [m.op];
      const bytes = ops.reduce((t, op) => t + (op.kind === 'write' ? op.data.length : 0), 0);
      expect(bytes).toBeLessThanOrEqual(BATCH_BYTES);
      expect(ops.length).toBeLessThanOrEqual(perFile);
    }
    expect(sent.length).toBe(Math.ceil(n / perFile));
    expect(flat().map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  });

  test('a larger write goes alone, after the batch before it', async () => {
    const { sent, batcher, flat } = recorder();
    await batcher.send(1, mkdir(1));
    await batcher.send(2, whole('small', 10));
    await batcher.send(3, whole('big', BATCH_FILE_BYTES + 1));
    expect(sent.map((m) => m.type)).toEqual(['ops', 'op']);
    expect(batcher.pending).toBe(0);
    // A part of a file sent in several parts is never batched either.
    await batcher.send(4, { ...whole('parted', 10), last: false });
    await batcher.send(5, mkdir(5));
    await batcher.flush();
    expect(sent.map((m) => m.type)).toEqual(['ops', 'op', 'op', 'op']);
    expect(flat().map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  test('a batch of one leaves as a plain op message; an empty flush sends nothing', async () => {
    const { sent, batcher } = recorder();
    await batcher.flush();
    expect(sent).toEqual([]);
    const before = Date.now();
    await batcher.send(7, mkdir(7));
    expect(batcher.sentAt).toBeGreaterThanOrEqual(before);
    await batcher.flush();
    expect(sent).toEqual([{ type: 'op', epoch, seq: 7, op: mkdir(7) }]);
  });
});
