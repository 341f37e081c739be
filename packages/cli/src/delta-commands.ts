import { stat } from 'node:fs/promises';
import {
  type DeltaFormat,
  decodeSignature,
  patchFile,
  readFileChunks,
  signatureFile,
  writeDeltaFile,
  writeSignatureFile,
} from '@mimic/delta';
import type { Command } from 'commander';
import { about, CliError } from './fail.js';

function quote(path: string): string {
  return JSON.stringify(path);
}

async function readSmallFile(path: string, limit: number): Promise<Uint8Array> {
  const { size } = await stat(path);
  if (size > limit) throw new CliError('ERR_TOO_LARGE', `is ${size} bytes, more than the ${limit} allowed`);
  const parts: Uint8Array[] = [];
  for await (const c of readFileChunks(path)) parts.push(c);
  return Buffer.concat(parts);
}

/** A signature of a 2^53-byte file at the smallest block size stays far below this. */
const MAX_SIGNATURE_FILE = 1 << 30;

export function addDeltaCommands(program: Command, log: (line: string) => void): void {
  program
    .command('signature')
    .description('write the block signature of <basis> to <signature-file>')
    .argument('<basis>', 'the file the receiver already has')
    .argument('<signature-file>', 'where to write the signature')
    .option('--block-size <bytes>', 'block size (default: square root of the file size, 700..131072)')
    .action((basis: string, out: string, opts: { blockSize?: string }) => runSignature(basis, out, opts));

  program
    .command('delta')
    .description('write the delta that turns the signed basis into <new-file>')
    .argument('<signature-file>', 'signature of the basis')
    .argument('<new-file>', 'the new version')
    .argument('<delta-file>', 'where to write the delta')
    .option('--format <format>', 'mimic (verified on patch) or librsync (for rdiff patch)', 'mimic')
    .action((sigPath: string, target: string, out: string, opts: { format: string }) =>
      runDelta(sigPath, target, out, opts.format, log),
    );

  program
    .command('patch')
    .description('apply <delta-file> to <basis>, verify, and write <out-file>')
    .argument('<basis>', 'the file the delta was made against')
    .argument('<delta-file>', 'a mimic or librsync (rdiff) delta')
    .argument('<out-file>', 'where to write the result')
    .action((basis: string, deltaPath: string, out: string) => runPatch(basis, deltaPath, out));
}

/** `mimic signature`: writes the signature of `basis` to `out`. */
export async function runSignature(
  basis: string,
  out: string,
  opts: { blockSize?: string } = {},
): Promise<void> {
  const blockSize = opts.blockSize === undefined ? undefined : Number(opts.blockSize);
  const sig = await about(`basis ${quote(basis)}`, () => signatureFile(basis, { blockSize }));
  await about(`signature file ${quote(out)}`, () => writeSignatureFile(sig, out));
}

/** `mimic delta`: writes the delta of `target` against the signature in `sigPath`. */
export async function runDelta(
  sigPath: string,
  target: string,
  out: string,
  formatName: string,
  log: (line: string) => void,
): Promise<void> {
  if (formatName !== 'mimic' && formatName !== 'librsync') {
    throw new CliError('ERR_INVALID_ARGUMENT', `--format ${quote(formatName)}: expected mimic or librsync`);
  }
  const format = formatName as DeltaFormat;
  const sig = await about(`signature file ${quote(sigPath)}`, async () =>
    decodeSignature(await readSmallFile(sigPath, MAX_SIGNATURE_FILE)),
  );
  await about(`new file ${quote(target)}`, () => stat(target));
  const size = await about(`delta file ${quote(out)}`, () => writeDeltaFile(sig, target, out, { format }));
  log(`delta: ${size} bytes`);
}

/** `mimic patch`: applies the delta in `deltaPath` to `basis`, verified, into `out`. */
export async function runPatch(basis: string, deltaPath: string, out: string): Promise<void> {
  await about(`basis ${quote(basis)}`, () => stat(basis));
  await about(`delta file ${quote(deltaPath)}`, () => stat(deltaPath));
  await about(`out file ${quote(out)}`, async () => {
    try {
      await patchFile(basis, deltaPath, out);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_BASIS_MISMATCH')
        throw new CliError(code, `basis ${quote(basis)}: ${(err as Error).message}`);
      if (code?.startsWith('ERR_')) {
        throw new CliError(code, `delta file ${quote(deltaPath)}: ${(err as Error).message}`);
      }
      throw err;
    }
  });
}
