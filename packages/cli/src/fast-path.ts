import { runDelta, runPatch, runSignature } from './delta-commands.js';
import { formatError, toCliError } from './fail.js';

/**
 * The delta commands in their plain form (`mimic patch a b c`, `mimic delta s n d
 * [--format f]`) skip the option parser entirely: for a 256 MiB patch, loading it is a
 * noticeable part of the run. Anything else, help included, goes through `main`.
 * Returns null when the arguments are not such a plain form.
 */
export async function fastPath(argv: string[]): Promise<number | null> {
  const [cmd, ...rest] = argv;
  const plain = (n: number) => rest.length === n && rest.every((a) => !a.startsWith('-'));
  let run: (() => Promise<void>) | null = null;
  if (cmd === 'signature' && plain(2)) run = () => runSignature(rest[0]!, rest[1]!);
  else if (cmd === 'patch' && plain(3)) run = () => runPatch(rest[0]!, rest[1]!, rest[2]!);
  else if (cmd === 'delta' && plain(3)) run = () => runDelta(rest[0]!, rest[1]!, rest[2]!, 'mimic', () => {});
  else if (cmd === 'delta' && rest.length === 5 && rest[3] === '--format' && plain3(rest)) {
    run = () => runDelta(rest[0]!, rest[1]!, rest[2]!, rest[4]!, () => {});
  }
  if (!run) return null;
  try {
    await run();
    return 0;
  } catch (err) {
    process.stderr.write(`${formatError(toCliError(err))}\n`);
    return 1;
  }
}

function plain3(rest: string[]): boolean {
  return rest.slice(0, 3).every((a) => !a.startsWith('-')) && !rest[4]!.startsWith('-');
}
