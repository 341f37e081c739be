import type { Epoch, Op, OpMessage, OpsMessage } from '@mimic/wire';

/**
 * Small ops leave together in one `ops` message of at most this many ops and bytes of content:
 * one message per file cost each side as much as the file itself, for a tree of small files.
 */
export const BATCH_OPS = 256;
export const BATCH_BYTES = 1024 * 1024;
/** Whole files up to this size join a batch; larger ones go alone, their content not copied. */
export const BATCH_FILE_BYTES = 64 * 1024;

/** Where the op messages go: one mirror's socket. */
export type SendOps = (msg: OpMessage | OpsMessage) => Promise<void>;

/**
 * Gathers the ops sent to one mirror into messages, in the order they are given: small ops (all
 * but writes, and whole files up to BATCH_FILE_BYTES) wait in a batch bounded by BATCH_OPS and
 * BATCH_BYTES; any other op sends the batch first and then goes alone. A batch of one leaves as
 * a plain `op` message.
 */
export class OpBatcher {
  readonly #send: SendOps;
  readonly #epoch: () => Epoch;
  #seqs: number[] = [];
  #ops: Op[] = [];
  #bytes = 0;
  /** When the last op was handed over (`Date.now()`), batched or not. */
  sentAt = 0;

  constructor(send: SendOps, epoch: () => Epoch) {
    this.#send = send;
    this.#epoch = epoch;
  }

  /** Ops waiting in the batch. */
  get pending(): number {
    return this.#ops.length;
  }

  /** Sends one op, or adds it to the batch (small ops); anything else sends the batch first. */
  async send(seq: number, op: Op): Promise<void> {
    this.sentAt = Date.now();
    const small = op.kind !== 'write' || (op.part === 0 && op.last && op.data.length <= BATCH_FILE_BYTES);
    if (small) {
      this.#seqs.push(seq);
      this.#ops.push(op);
      this.#bytes += op.kind === 'write' ? op.data.length : 0;
      if (this.#ops.length >= BATCH_OPS || this.#bytes >= BATCH_BYTES) await this.flush();
      return;
    }
    await this.flush();
    await this.#send({ type: 'op', epoch: this.#epoch(), seq, op });
  }

  /** Sends the batched ops. */
  async flush(): Promise<void> {
    const seqs = this.#seqs;
    const ops = this.#ops;
    if (ops.length === 0) return;
    this.#seqs = [];
    this.#ops = [];
    this.#bytes = 0;
    const epoch = this.#epoch();
    if (ops.length === 1) await this.#send({ type: 'op', epoch, seq: seqs[0]!, op: ops[0]! });
    else await this.#send({ type: 'ops', epoch, seqs, ops });
  }
}
