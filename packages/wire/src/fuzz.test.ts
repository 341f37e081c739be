import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encode } from './codec.js';
import { WireError } from './errors.js';
import { MESSAGE_TYPES, type Message } from './messages.js';
import { messageArb } from './test-arbitraries.js';
import { validateMessage } from './validate.js';

/**
 * Every input to `decode` must end in a valid message or a `WireError`: never another error type,
 * never a hang. Inputs mix random bytes, random msgpack values (plain, and with msgpackr's own
 * extensions), message-shaped maps with random field values, and valid encodings with bytes
 * flipped, cut, inserted or appended. `MIMIC_FUZZ_RUNS` sets the number of inputs.
 */

const RUNS = Number.parseInt(process.env.MIMIC_FUZZ_RUNS ?? '', 10) || 10_000;

const plain = new Packr({ useRecords: false });
// Records, structured-clone references and typed-array extensions: what a careless peer might send.
const extended = new Packr({ structuredClone: true, moreTypes: true });

const FIELD_NAMES = [
  ...['type', 'protocol', 'version', 'nodeId', 'role', 'epoch', 'appliedSeq', 'nonce', 'listenUrl', 'proof'],
  ...['seq', 'mode', 'op', 'entries', 'last', 'path', 'signature', 'code', 'message', 'kind', 'term', 'node'],
  ...['target', 'mtimeMs', 'size', 'hash', 'encoding', 'baseHash', 'part', 'data', 'from', 'to', '__proto__'],
  ...['codecs', 'compress', 'codec', 'rawLength'],
];

const valueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.anything({ maxDepth: 2, withMap: true, withSet: true, withDate: true, withTypedArray: true }),
  fc.constantFrom(...MESSAGE_TYPES, 'mimic', 'write', 'delta', 'file', '..', '/', '.mimic/x', ''),
  fc.double(),
  fc.integer(),
  fc.uint8Array({ maxLength: 40 }),
);

function packWith(packr: Packr, value: unknown): Uint8Array {
  try {
    return packr.pack(value);
  } catch {
    return Uint8Array.of(0xc1);
  }
}

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; junk: Uint8Array }
  | { kind: 'append'; junk: Uint8Array };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    junk: fc.uint8Array({ minLength: 1, maxLength: 8 }),
  }),
  fc.record({ kind: fc.constant('append' as const), junk: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Uint8Array.from(bytes);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : ('at' in m ? m.at : 0) % out.length;
    if (m.kind === 'flip' && out.length > 0) out[at] = (out[at] ?? 0) ^ m.xor;
    else if (m.kind === 'truncate') out = out.slice(0, at);
    else if (m.kind === 'insert') out = Uint8Array.of(...out.subarray(0, at), ...m.junk, ...out.subarray(at));
    else if (m.kind === 'append') out = Uint8Array.of(...out, ...m.junk);
  }
  return out;
}

const inputArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }) },
  { weight: 2, arbitrary: valueArb.map((v) => packWith(plain, v)) },
  { weight: 1, arbitrary: valueArb.map((v) => packWith(extended, v)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.constantFrom(...MESSAGE_TYPES), fc.dictionary(fc.constantFrom(...FIELD_NAMES), valueArb))
      .map(([type, fields]) => packWith(plain, { ...fields, type })),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(messageArb, fc.constantFrom(...FIELD_NAMES), valueArb)
      .map(([msg, key, value]) => packWith(plain, { ...msg, [key]: value })),
  },
  {
    weight: 5,
    arbitrary: fc
      .tuple(messageArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }))
      .map(([msg, mutations]) => mutate(encode(msg), mutations)),
  },
);

/** Decodes `bytes` and checks the outcome: a message that validates and re-encodes, or a WireError. */
function decodeChecked(bytes: Uint8Array): Message | WireError {
  let msg: Message;
  try {
    msg = decode(bytes);
  } catch (err) {
    if (err instanceof WireError) return err;
    throw new Error(`decode threw ${String(err)} instead of a WireError`, { cause: err });
  }
  expect(validateMessage(msg)).toBe(msg);
  expect(decode(encode(msg))).toEqual(msg);
  return msg;
}

describe('decode fuzz', () => {
  it(`returns a valid message or throws WireError for ${RUNS} inputs`, () => {
    const outcomes = { messages: 0, errors: 0 };
    fc.assert(
      fc.property(inputArb, (bytes) => {
        if (decodeChecked(bytes) instanceof WireError) outcomes.errors++;
        else outcomes.messages++;
      }),
      { numRuns: RUNS },
    );
    // The mix must exercise both outcomes, or it tests less than it claims.
    expect(outcomes.messages).toBeGreaterThan(0);
    expect(outcomes.errors).toBeGreaterThan(0);
  });

  it.each([
    ['deep nesting', new Uint8Array(200_000).fill(0x91)],
    ['deep maps', Uint8Array.from({ length: 100_000 }, (_, i) => (i % 2 === 0 ? 0x81 : 0xa0))],
    ['a str32 claiming 4 GiB', Uint8Array.of(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61)],
    ['a bin32 claiming 4 GiB', Uint8Array.of(0xc6, 0xff, 0xff, 0xff, 0xff, 0x00)],
    ['an array32 claiming 4G items', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff, 0x01)],
    ['a map32 claiming 2G entries', Uint8Array.of(0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01)],
    ['an ext32 claiming 4 GiB', Uint8Array.of(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00)],
    ['a string bundle pointing backwards', Uint8Array.of(0xd6, 0x62, 0xff, 0xff, 0xff, 0x00, 0xa1, 0x61)],
    [
      'a record definition',
      Uint8Array.of(0xd4, 0x72, 0x40, 0x91, 0xa4, 0x74, 0x79, 0x70, 0x65, 0xa3, 0x61, 0x63, 0x6b),
    ],
    ['an error extension', extended.pack(new RangeError('x'))],
  ])('survives %s', (_name, bytes) => {
    const outcome = decodeChecked(Uint8Array.from(bytes));
    expect(outcome).toBeInstanceOf(WireError);
  });
});
