import { EventEmitter } from 'node:events';
import type { Message } from '@mimic/wire';
import { describe, expect, it } from 'vitest';
import type { Store } from '../node/store.js';
import type { Applier } from './applier/applier.js';
import { type CheckpointTarget, FollowState } from './follow-state.js';
import type { MirrorEvents } from './mirror-types.js';

/** A FollowState over a fake applier whose background landings finish when the test says. */
function setup() {
  const logged: string[] = [];
  const landings: { record?: () => void; done?: (err?: Error) => void }[] = [];
  const recorded: number[] = [];
  const s = new FollowState('/nowhere', (event) => void logged.push(event), new EventEmitter<MirrorEvents>());
  s.store = {
    setAppliedSeq: (seq: number) => void recorded.push(seq),
    markUnrecorded: () => {},
  } as unknown as Store;
  s.applier = {
    commitSoon: async (record?: () => void, done?: (err?: Error) => void) =>
      void landings.push({ record, done }),
    abandon: async () => {},
  } as unknown as Applier;
  const sent: Message[] = [];
  const closed: string[] = [];
  const conn = (current = true): CheckpointTarget => ({
    current,
    send: async (m) => void sent.push(m),
    close: (_code, reason) => void closed.push(reason),
  });
  /** Lands the oldest pending batch (its record, then its callback). */
  const land = (err?: Error) => {
    const l = landings.shift()!;
    if (!err) l.record?.();
    l.done?.(err);
  };
  return { s, logged, recorded, sent, closed, conn, land };
}

const refusal = (code: string) => Object.assign(new Error(`refused (${code})`), { code });

describe('FollowState failure bookkeeping', () => {
  it('a batch that lands after a later op failed keeps that failure for the next connection', async () => {
    const { s, land, recorded, conn } = setup();
    s.appliedSeq = 5;
    await s.checkpoint(conn(false));
    await s.failed(refusal('ERR_UNSAFE_PATH'), { seq: 7, path: 'a' }, 'ws://p');
    land();
    expect(recorded).toEqual([5]);
    expect(s.failure).toEqual({ seq: 7, code: 'ERR_UNSAFE_PATH', failedAt: 7 });
    expect(s.takeProgress()).toBe(false);
  });

  it('a batch that lands at or past the failed op clears the failure and acks', async () => {
    const { s, land, sent, conn } = setup();
    s.appliedSeq = 5;
    await s.failed(refusal('ERR_UNSAFE_PATH'), { seq: 5, path: 'a' }, 'ws://p');
    s.reconcileNext();
    await s.checkpoint(conn());
    land();
    expect(s.failure).toBeNull();
    expect(s.mustReconcile).toBe(false);
    expect(s.takeProgress()).toBe(true);
    expect(sent).toMatchObject([{ type: 'ack', seq: 5 }]);
  });

  it('the same refusal twice at the same sequence logs replay-refused once and forces a reconcile', async () => {
    const { s, logged } = setup();
    await s.failed(refusal('ERR_UNSAFE_PATH'), { seq: 9, path: 'a' }, 'ws://p');
    expect(s.mustReconcile).toBe(false);
    await s.failed(refusal('ERR_UNSAFE_PATH'), { seq: 9, path: 'a' }, 'ws://p');
    await s.failed(refusal('ERR_UNSAFE_PATH'), { seq: 9, path: 'a' }, 'ws://p');
    expect(s.mustReconcile).toBe(true);
    expect(logged.filter((e) => e === 'replay-refused')).toHaveLength(1);
  });

  it('a landing that fails forces a reconcile, closes its connection, and is logged once', async () => {
    const { s, land, closed, logged, conn } = setup();
    s.appliedSeq = 3;
    await s.checkpoint(conn());
    const err = refusal('ERR_LAND');
    land(err);
    expect(s.mustReconcile).toBe(true);
    s.nodeId = 'm1';
    s.epoch = { term: 1, node: 'p1' };
    expect(s.hello(new Uint8Array(32)).appliedSeq).toBe(0);
    expect(closed).toEqual(['ERR_LAND: refused (ERR_LAND)']);
    await s.failed(err, { seq: 4, path: 'b' }, 'ws://p');
    expect(logged.filter((e) => e === 'apply-failed')).toHaveLength(1);
  });
});
