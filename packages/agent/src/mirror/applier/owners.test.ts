import { describe, expect, it } from 'vitest';
import { idsFor, ownerDiffers } from './owners.js';

describe('owner policy', () => {
  const all = { owner: true, group: true };

  it('passes -1 for what the policy leaves alone, and nothing when nothing is left', () => {
    expect(idsFor(all, { uid: 33, gid: 44 })).toEqual([33, 44]);
    expect(idsFor({ owner: false, group: true }, { uid: 33, gid: 44 })).toEqual([-1, 44]);
    expect(idsFor({ owner: true, group: false }, { uid: 33, gid: 44 })).toEqual([33, -1]);
    expect(idsFor({ owner: false, group: false }, { uid: 33, gid: 44 })).toBeNull();
    // A primary that does not send owners leaves the mirror's as they are.
    expect(idsFor(all, {})).toBeNull();
  });

  it('compares only what the policy keeps and the primary sent', () => {
    expect(ownerDiffers(all, { uid: 0, gid: 0 }, { uid: 33, gid: 0 })).toBe(true);
    expect(ownerDiffers({ owner: false, group: true }, { uid: 0, gid: 33 }, { uid: 33, gid: 33 })).toBe(
      false,
    );
    expect(ownerDiffers(all, { uid: 0, gid: 0 }, {})).toBe(false);
    expect(ownerDiffers(all, { uid: 33, gid: 33 }, { uid: 33, gid: 33 })).toBe(false);
  });
});
