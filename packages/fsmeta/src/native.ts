import { createRequire } from 'node:module';

/** The addon's calls as built from native/fsmeta.c; index.ts wraps them in typed helpers. */
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
}

const require = createRequire(import.meta.url);

/** Loaded once, from the build node-gyp made at install. */
export const native: Native = require('../build/Release/fsmeta.node') as Native;
