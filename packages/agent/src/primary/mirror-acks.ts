/* What a primary knows of its mirrors: how far each acknowledged, and waiting for that. */
import type { EventEmitter } from 'node:events';
import type { SeqClock } from '../node/seq-clock.js';
import type { MirrorStatus } from './primary-types.js';
import type { MirrorSession } from './session.js';

/** What a mirror that is not connected now was sent before (since this process started). */
export interface KnownMirror {
  id: string;
  ackedSeq: number;
  bytesSent: number;
  opsSent: number;
}

/** What a mirror whose connection closed was sent on it, added to what it was sent before. */
export function rememberMirror(known: Map<string, KnownMirror>, s: MirrorSession): void {
  if (!s.id) return;
  const prev = known.get(s.id);
  known.set(s.id, {
    id: s.id,
    ackedSeq: s.ackedSeq,
    bytesSent: (prev?.bytesSent ?? 0) + s.socket.bytesSent,
    opsSent: (prev?.opsSent ?? 0) + s.opsSent,
  });
}

/**
 * Every mirror known (from the store, or connected now), a stale connection's bytes added in,
 * with how far behind the journal (at `lastSeq`, its times and sizes in `clock`) each one is.
 */
export function mirrorList(
  known: ReadonlyMap<string, KnownMirror>,
  sessions: Iterable<MirrorSession>,
  lastSeq: number,
  clock: SeqClock,
): MirrorStatus[] {
  const lag = (acked: number) => ({
    lagOps: Math.max(0, lastSeq - acked),
    lagBytes: clock.bytesAfter(acked),
    lagSeconds: Math.round(clock.ageAfter(acked) * 1000) / 1000,
  });
  const mirrors = new Map<string, MirrorStatus>();
  for (const k of known.values())
    mirrors.set(k.id, { ...k, connected: false, ...lag(k.ackedSeq), codec: null });
  for (const s of sessions) {
    if (!s.id) continue;
    const prev = known.get(s.id);
    const seen = mirrors.get(s.id);
    // A second connection of one mirror (the old one not closed yet): the one further along.
    if (seen?.connected && seen.ackedSeq > s.ackedSeq) continue;
    mirrors.set(s.id, {
      id: s.id,
      connected: s.connected,
      ackedSeq: s.ackedSeq,
      bytesSent: s.socket.bytesSent + (prev?.bytesSent ?? 0),
      opsSent: s.opsSent + (prev?.opsSent ?? 0),
      ...lag(s.ackedSeq),
      codec: s.socket.codec,
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
