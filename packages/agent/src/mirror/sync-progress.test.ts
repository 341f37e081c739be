import { describe, expect, it } from 'vitest';
import { SyncProgress } from './sync-progress.js';

describe('SyncProgress', () => {
  it('a reconcile: files and bytes done, rate and ETA by bytes', () => {
    const p = new SyncProgress();
    expect(p.view()).toBeNull();
    p.plan('initial', 4, 4000, 0);
    p.done(1000);
    p.done(1000);
    const v = p.view(2000)!;
    expect(v).toMatchObject({ phase: 'initial', files: 2, filesTotal: 4, bytes: 2000, bytesTotal: 4000 });
    expect(v.rateBytesPerSec).toBe(1000);
    expect(v.etaSeconds).toBe(2);
    p.end();
    expect(p.view()).toBeNull();
  });

  it('a long catch-up by journal counts ops and ends at its last seq; a short one shows nothing', () => {
    const p = new SyncProgress();
    p.catchUp(false, 100, 150, 0);
    expect(p.view(10)).toBeNull();
    p.catchUp(false, 0, 5000, 0);
    p.applied(1000);
    const v = p.view(1000)!;
    expect(v).toMatchObject({ phase: 'catch-up', files: 1000, filesTotal: 5000, bytesTotal: 0 });
    expect(v.etaSeconds).toBe(4);
    p.applied(5000);
    expect(p.view(2000)).toBeNull();
  });
});
