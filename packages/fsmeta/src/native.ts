import { createRequire } from 'node:module';

declare const watchBrand: unique symbol;
/** A fanotify watch as native/fanotify.c holds it: only ever handed back to the addon. */
export type NativeFanotifyWatch = { readonly [watchBrand]: true };

/** One read of a fanotify watch: parallel paths (relative to its root) and event masks. */
export interface NativeFanotifyBatch {
  paths: string[];
  masks: number[];
  overflow: boolean;
  events: number;
}

/**
 * The addon's calls as built from native/fsmeta.c and native/fanotify.c; index.ts and fanotify.ts
 * wrap them in typed helpers.
 */
export interface Native {
  listXattrs(path: string): string[];
  getXattr(path: string, name: string): Buffer | null;
  setXattr(path: string, name: string, value: Uint8Array): void;
  removeXattr(path: string, name: string): boolean;
  dataRanges(fd: number, maxRanges: number): number[] | null;
  punchHole(fd: number, offset: number, length: number): boolean;
  setTimesNs(path: string, atimeNs: bigint, mtimeNs: bigint): void;
  setMtime(target: string | number, ms: number, ns: number): void;
  notify(socketPath: string, message: string): void;
  trimMemory(): boolean;
  lstatDir(path: string): { names: string[]; stats: Float64Array };
  fanotifyOpen(root: string): NativeFanotifyWatch;
  fanotifyRead(watch: NativeFanotifyWatch, timeoutMs: number): NativeFanotifyBatch;
  fanotifyClose(watch: NativeFanotifyWatch): void;
}

const require = createRequire(import.meta.url);

/** Loaded once, from the build node-gyp made at install. */
export const native: Native = require('../build/Release/fsmeta.node') as Native;
