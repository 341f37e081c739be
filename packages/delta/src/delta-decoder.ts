import {
  type BasisInfo,
  type DeltaFormat,
  LIBRSYNC_DELTA_MAGIC,
  MIMIC_DELTA_MAGIC,
  MIMIC_DELTA_VERSION,
  MIMIC_HEADER_BYTES,
  OP_COPY,
  OP_END,
  OP_LITERAL,
} from './delta-format.js';
import type { TargetSummary } from './delta-matcher.js';
import { DeltaError } from './errors.js';

export type DeltaCommand =
  | { readonly type: 'copy'; readonly offset: number; readonly length: number }
  | { readonly type: 'literal'; readonly data: Uint8Array };

/*
 * Streaming decoder for both delta formats. States:
 *   magic    4 bytes decide the format
 *   header   (mimic) basis length and hash
 *   op       one opcode byte; sets how many argument bytes follow
 *   args     the opcode's fixed-size arguments
 *   literal  payload bytes, passed through as they arrive (a literal may come in pieces)
 *   done     after the end command; any further byte is an error
 * Arguments are gathered in a 24-byte scratch buffer, so no chunk is ever copied whole.
 */
type State = 'magic' | 'header' | 'op' | 'args' | 'literal' | 'done';

const WIDTHS = [1, 2, 4, 8] as const;

export class DeltaDecoder {
  format: DeltaFormat | undefined;
  basis: BasisInfo | undefined;
  /** The target's declared length and hash (mimic format), once the end command is read. */
  trailer: TargetSummary | undefined;
  #state: State = 'magic';
  readonly #scratch = new Uint8Array(MIMIC_HEADER_BYTES);
  readonly #view = new DataView(this.#scratch.buffer);
  #fill = 0;
  #need = 4;
  #op = 0;
  #literalLeft = 0;
  #offset = 0;

  get done(): boolean {
    return this.#state === 'done';
  }

  push(chunk: Uint8Array): DeltaCommand[] {
    const out: DeltaCommand[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 'done') {
        throw new DeltaError(
          'ERR_BAD_DELTA',
          `unexpected data after the end of the delta at byte ${this.#offset}`,
        );
      }
      if (this.#state === 'literal') {
        const n = Math.min(this.#literalLeft, chunk.length - i);
        out.push({ type: 'literal', data: chunk.subarray(i, i + n) });
        this.#literalLeft -= n;
        i += n;
        this.#offset += n;
        if (this.#literalLeft === 0) this.#expectOp();
        continue;
      }
      const n = Math.min(this.#need - this.#fill, chunk.length - i);
      this.#scratch.set(chunk.subarray(i, i + n), this.#fill);
      this.#fill += n;
      i += n;
      this.#offset += n;
      if (this.#fill === this.#need) this.#complete(out);
    }
    return out;
  }

  /** Checks that the whole delta arrived. */
  end(): void {
    if (this.#state !== 'done') {
      throw new DeltaError('ERR_TRUNCATED', `delta is truncated after ${this.#offset} bytes`);
    }
  }

  #expect(state: State, need: number): void {
    this.#state = state;
    this.#need = need;
    this.#fill = 0;
  }

  #expectOp(): void {
    this.#expect('op', 1);
  }

  #uint(at: number, width: number): number {
    const v = this.#view;
    const n =
      width === 1
        ? v.getUint8(at)
        : width === 2
          ? v.getUint16(at)
          : width === 4
            ? v.getUint32(at)
            : v.getBigUint64(at);
    const num = Number(n);
    if (!Number.isSafeInteger(num)) {
      throw new DeltaError('ERR_BAD_DELTA', `delta field at byte ${this.#offset} is out of range`);
    }
    return num;
  }

  #complete(out: DeltaCommand[]): void {
    switch (this.#state) {
      case 'magic': {
        const magic = this.#view.getUint32(0);
        if (magic === MIMIC_DELTA_MAGIC) {
          this.format = 'mimic';
          this.#expect('header', MIMIC_HEADER_BYTES - 4);
        } else if (magic === LIBRSYNC_DELTA_MAGIC) {
          this.format = 'librsync';
          this.#expectOp();
        } else {
          throw new DeltaError('ERR_BAD_DELTA', 'not a delta (unknown magic)');
        }
        return;
      }
      case 'header': {
        const version = this.#view.getUint8(0);
        if (version !== MIMIC_DELTA_VERSION) {
          throw new DeltaError('ERR_UNSUPPORTED_VERSION', `delta format version ${version} is not supported`);
        }
        if (this.#view.getUint8(1) !== 0 || this.#view.getUint16(2) !== 0) {
          throw new DeltaError('ERR_BAD_DELTA', 'delta header has non-zero reserved bytes');
        }
        this.basis = { length: this.#uint(4, 8), hash: this.#view.getBigUint64(12) };
        this.#expectOp();
        return;
      }
      case 'op':
        this.#op = this.#scratch[0]!;
        this.#startOp();
        return;
      case 'args':
        this.#finishArgs(out);
        return;
      default:
        throw new DeltaError('ERR_BAD_DELTA', `delta decoder in state ${this.#state}`);
    }
  }

  #startOp(): void {
    const op = this.#op;
    if (this.format === 'mimic') {
      if (op === OP_END) this.#expect('args', 16);
      else if (op === OP_COPY) this.#expect('args', 12);
      else if (op === OP_LITERAL) this.#expect('args', 4);
      else
        throw new DeltaError(
          'ERR_BAD_DELTA',
          `unknown delta command 0x${op.toString(16)} at byte ${this.#offset - 1}`,
        );
      return;
    }
    if (op === OP_END) {
      this.#state = 'done';
    } else if (op <= 0x40) {
      this.#beginLiteral(op);
    } else if (op <= 0x44) {
      this.#expect('args', WIDTHS[op - 0x41]!);
    } else if (op <= 0x54) {
      const k = op - 0x45;
      this.#expect('args', WIDTHS[k >> 2]! + WIDTHS[k & 3]!);
    } else {
      throw new DeltaError(
        'ERR_BAD_DELTA',
        `unknown librsync command 0x${op.toString(16)} at byte ${this.#offset - 1}`,
      );
    }
  }

  #finishArgs(out: DeltaCommand[]): void {
    const op = this.#op;
    if (this.format === 'mimic') {
      if (op === OP_END) {
        this.trailer = { targetLength: this.#uint(0, 8), targetHash: this.#view.getBigUint64(8) };
        this.#state = 'done';
      } else if (op === OP_COPY) {
        out.push({ type: 'copy', offset: this.#uint(0, 8), length: this.#uint(8, 4) });
        this.#expectOp();
      } else {
        this.#beginLiteral(this.#uint(0, 4));
      }
      return;
    }
    if (op <= 0x44) {
      this.#beginLiteral(this.#uint(0, WIDTHS[op - 0x41]!));
      return;
    }
    const k = op - 0x45;
    const wo = WIDTHS[k >> 2]!;
    out.push({ type: 'copy', offset: this.#uint(0, wo), length: this.#uint(wo, WIDTHS[k & 3]!) });
    this.#expectOp();
  }

  #beginLiteral(length: number): void {
    if (length === 0) {
      this.#expectOp();
      return;
    }
    this.#literalLeft = length;
    this.#state = 'literal';
  }
}
