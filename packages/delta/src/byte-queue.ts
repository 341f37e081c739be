/**
 * Collects small writes into chunks of `chunkSize` bytes, so that encoders can emit
 * many tiny fields without a tiny buffer each. `drain` hands over what is complete.
 */
export class ByteQueue {
  readonly #chunkSize: number;
  #chunks: Uint8Array[] = [];
  #cur: Uint8Array;
  #view: DataView;
  #fill = 0;
  #total = 0;

  constructor(chunkSize = 256 * 1024) {
    this.#chunkSize = chunkSize;
    this.#cur = new Uint8Array(chunkSize);
    this.#view = new DataView(this.#cur.buffer);
  }

  /** Bytes written so far, drained or not. */
  get total(): number {
    return this.#total;
  }

  #room(n: number): void {
    if (this.#cur.length - this.#fill >= n) return;
    this.#seal();
    if (n > this.#cur.length) {
      this.#cur = new Uint8Array(n);
      this.#view = new DataView(this.#cur.buffer);
    }
  }

  #seal(): void {
    if (this.#fill > 0) this.#chunks.push(this.#cur.subarray(0, this.#fill));
    this.#cur = new Uint8Array(this.#chunkSize);
    this.#view = new DataView(this.#cur.buffer);
    this.#fill = 0;
  }

  u8(v: number): void {
    this.#room(1);
    this.#cur[this.#fill++] = v;
    this.#total += 1;
  }

  /** Unsigned big-endian integer of 1, 2, 4 or 8 bytes. */
  uint(v: number, bytes: 1 | 2 | 4 | 8): void {
    this.#room(bytes);
    const o = this.#fill;
    if (bytes === 1) this.#view.setUint8(o, v);
    else if (bytes === 2) this.#view.setUint16(o, v);
    else if (bytes === 4) this.#view.setUint32(o, v);
    else this.#view.setBigUint64(o, BigInt(v));
    this.#fill += bytes;
    this.#total += bytes;
  }

  u64(v: bigint): void {
    this.#room(8);
    this.#view.setBigUint64(this.#fill, v);
    this.#fill += 8;
    this.#total += 8;
  }

  bytes(b: Uint8Array): void {
    this.#total += b.length;
    if (b.length >= this.#chunkSize) {
      // Large payloads are copied once into their own chunk.
      this.#seal();
      this.#chunks.push(b.slice());
      return;
    }
    this.#room(b.length);
    this.#cur.set(b, this.#fill);
    this.#fill += b.length;
  }

  /** Complete chunks; with `all`, the partial one too. */
  drain(all = false): Uint8Array[] {
    if (all && this.#fill > 0) this.#seal();
    const out = this.#chunks;
    this.#chunks = [];
    return out;
  }
}
