/* What a primary knows of its mirrors: how far each acknowledged, and waiting for that. */
import type { EventEmitter } from 'node:events';
import type { MirrorStatus } from './primary-types.js';
import type { MirrorSession } from './session.js';

/** Every mirror known (from the store, or connected now), a stale connection's bytes added in. */
export function mirrorList(
  known: ReadonlyMap<string, MirrorStatus>,
  sessions: Iterable<MirrorSession>,
): MirrorStatus[] {
  const mirrors = new Map(known);
  for (const s of sessions) {
    if (!s.id) continue;
    const prev = mirrors.get(s.id);
    mirrors.set(s.id, {
      id: s.id,
      connected: s.connected,
      ackedSeq: s.ackedSeq,
      bytesSent: s.socket.bytesSent + (prev && !prev.connected ? prev.bytesSent : 0),
    });
  }
  return [...mirrors.values()];
}

/**
 * Resolves once `done()` holds, checked at each `event` of `emitter`; rejects with `timedOut()`
 * after `timeoutMs`. The listener is removed either way.
 */
export function waitUntil(
  emitter: EventEmitter,
  event: string,
  done: () => boolean,
  timeoutMs: number,
  timedOut: () => Error,
): Promise<void> {
  if (done()) return Promise.resolve();
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, check);
      reject(timedOut());
    }, timeoutMs);
    const check = () => {
      if (!done()) return;
      clearTimeout(timer);
      emitter.off(event, check);
      resolve();
    };
    emitter.on(event, check);
  });
}
