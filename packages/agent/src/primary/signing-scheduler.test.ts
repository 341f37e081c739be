import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeSignature, hashToHex, strongHash } from '@mimic/delta';
import { afterAll, describe, expect, test } from 'vitest';
import { Store } from '../node/store.js';
import { MAX_TO_SIGN_BYTES, QUIET_MS, SigningScheduler } from './signing-scheduler.js';

const dir = mkdtempSync(join(tmpdir(), 'mimic-signing-'));
const store = new Store(join(dir, 'mimic.db'));
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const contentOf = (fill: number, bytes = 16 * 1024) => new Uint8Array(bytes).fill(fill);
const hashOf = (content: Uint8Array) => hashToHex(strongHash(content));

describe('SigningScheduler', () => {
  test('a version handed over later is signed by a slice, into the store', async () => {
    const signing = new SigningScheduler(store, dir);
    const content = contentOf(1);
    const hash = hashOf(content);
    signing.sink.later('a', hash, content);
    expect(signing.waiting).toBe(1);
    expect(signing.heldBytes).toBe(content.length);
    await signing.slice();
    expect(signing.waiting).toBe(0);
    expect(signing.heldBytes).toBe(0);
    const sig = store.getSignature(hash);
    expect(sig && hashToHex(decodeSignature(sig).fileHash)).toBe(hash);
  });

  test('now() answers at once for a version waiting, and once only', async () => {
    const signing = new SigningScheduler(store, dir);
    const content = contentOf(2);
    const hash = hashOf(content);
    signing.later('b', hash, content);
    signing.later('b', hash, content); // the same version twice waits once
    expect(signing.waiting).toBe(1);
    const sig = await signing.now(hash);
    expect(sig && hashToHex(decodeSignature(sig).fileHash)).toBe(hash);
    expect(store.getSignature(hash)).toEqual(sig);
    expect(await signing.now(hash)).toBeUndefined();
  });

  test('past MAX_TO_SIGN_BYTES a version waits by path: re-read when signed, dropped if changed', async () => {
    const signing = new SigningScheduler(store, dir);
    const big = contentOf(3, MAX_TO_SIGN_BYTES);
    signing.later('big', hashOf(big), big);
    expect(signing.heldBytes).toBe(MAX_TO_SIGN_BYTES);
    const kept = contentOf(4);
    const changed = contentOf(5);
    writeFileSync(join(dir, 'kept'), kept);
    writeFileSync(join(dir, 'changed'), contentOf(6));
    signing.later('kept', hashOf(kept), kept);
    signing.later('changed', hashOf(changed), changed);
    expect(signing.heldBytes).toBe(MAX_TO_SIGN_BYTES);
    const sig = await signing.now(hashOf(kept));
    expect(sig && hashToHex(decodeSignature(sig).fileHash)).toBe(hashOf(kept));
    expect(await signing.now(hashOf(changed))).toBeUndefined();
    expect(store.getSignature(hashOf(changed))).toBeUndefined();
  });

  test('a slice is due only with versions waiting, QUIET_MS after the last send, when idle', () => {
    const signing = new SigningScheduler(store, dir);
    const long = Date.now() - QUIET_MS;
    expect(signing.due(long, true)).toBe(false);
    signing.later('c', hashOf(contentOf(7)), contentOf(7));
    expect(signing.due(long, true)).toBe(true);
    expect(signing.due(long, false)).toBe(false);
    expect(signing.due(Date.now(), true)).toBe(false);
  });
});
