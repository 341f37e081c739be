import xxhash from 'xxhash-wasm';

/**
 * xxh64 from xxhash-wasm. The WebAssembly module loads once, at import time, so every
 * function in this package can hash synchronously.
 */
const api = await xxhash();

/** xxh64 (seed 0) of one block. Hash blocks, not whole files: it is far faster in pieces. */
export function strongHash(bytes: Uint8Array): bigint {
  return api.h64Raw(bytes);
}

/** An incremental xxh64 over a byte stream. */
export interface StreamHasher {
  update(bytes: Uint8Array): void;
  digest(): bigint;
}

const UPDATE_SLICE = 1 << 20;

export function createHasher(): StreamHasher {
  const h = api.create64();
  return {
    update(bytes) {
      // Large updates are copied into wasm memory whole; feeding slices keeps that memory small.
      for (let i = 0; i < bytes.length; i += UPDATE_SLICE) {
        h.update(bytes.subarray(i, Math.min(bytes.length, i + UPDATE_SLICE)));
      }
    },
    digest: () => h.digest(),
  };
}

/** xxh64 of a whole buffer, as a 16-digit lowercase hex string. */
export function contentHash(bytes: Uint8Array): string {
  const h = createHasher();
  h.update(bytes);
  return hashToHex(h.digest());
}

export function hashToHex(h: bigint): string {
  return h.toString(16).padStart(16, '0');
}

export function hexToHash(hex: string): bigint {
  return BigInt(`0x${hex}`);
}
