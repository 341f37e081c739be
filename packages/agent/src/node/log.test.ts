import { describe, expect, it } from 'vitest';
import { jsonLogger, limitRepeats } from './log.js';
import { levelOf, logLevel, setLogLevel } from './log-level.js';

function recorder() {
  const lines: { event: string; fields: Record<string, unknown> }[] = [];
  return { lines, log: (event: string, fields: Record<string, unknown>) => lines.push({ event, fields }) };
}

describe('limitRepeats', () => {
  it('lets an identical line through burst times per window, then counts what it held back', () => {
    let now = 0;
    const r = recorder();
    const log = limitRepeats(r.log, { burst: 2, windowMs: 1000, now: () => now });
    for (let i = 0; i < 40; i++) {
      log('disconnected', { reason: 'ERR_UNSAFE_PATH: d/passwd' });
      now += 50;
    }
    // 40 lines over 2 s: two windows, two lines each, the second window's first says 18 were held.
    expect(r.lines.map((l) => l.fields.repeated)).toEqual([undefined, undefined, 18, undefined]);
    expect(r.lines).toHaveLength(4);
  });

  it('never holds back lines that differ', () => {
    const r = recorder();
    const log = limitRepeats(r.log, { burst: 1, now: () => 0 });
    for (let i = 0; i < 10; i++) log('applied', { seq: i });
    expect(r.lines).toHaveLength(10);
  });

  it('forgets the oldest line once it remembers maxKeys of them', () => {
    const r = recorder();
    const log = limitRepeats(r.log, { burst: 1, maxKeys: 2, now: () => 0 });
    log('a', {});
    log('b', {});
    log('c', {}); // forgets a
    log('a', {}); // a new line again
    log('c', {}); // held
    expect(r.lines.map((l) => l.event)).toEqual(['a', 'b', 'c', 'a']);
  });
});

describe('log levels', () => {
  it('classifies events by name', () => {
    expect(['error', 'apply-failed', 'watch-error', 'mirror-error'].map(levelOf)).toEqual([
      'error',
      'error',
      'error',
      'error',
    ]);
    expect(
      ['fenced', 'refused', 'retrying', 'disconnected', 'owners-not-kept', 'etcd-unreachable'].map(levelOf),
    ).toEqual(['warn', 'warn', 'warn', 'warn', 'warn', 'warn']);
    expect(['listening', 'ready', 'connected', 'caught-up'].map(levelOf)).toEqual([
      'info',
      'info',
      'info',
      'info',
    ]);
    expect(levelOf('reconcile-plan')).toBe('debug');
  });

  it('drops lines below the threshold, which changes at run time', () => {
    const lines: string[] = [];
    const log = jsonLogger('primary', (l) => lines.push(l));
    const before = logLevel();
    try {
      setLogLevel('warn');
      log('ready', {});
      log('refused', {});
      log('apply-failed', {});
      setLogLevel('debug');
      log('reconcile-plan', {});
      setLogLevel('error');
      log('fenced', {});
    } finally {
      setLogLevel(before);
    }
    const parsed = lines.map((l) => JSON.parse(l) as { event: string; level: string });
    expect(parsed.map((p) => [p.event, p.level])).toEqual([
      ['refused', 'warn'],
      ['apply-failed', 'error'],
      ['reconcile-plan', 'debug'],
    ]);
  });

  it('refuses an unknown level', () => {
    expect(() => setLogLevel('loud' as never)).toThrow(TypeError);
  });
});
