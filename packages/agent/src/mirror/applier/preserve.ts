import { lstat, mkdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * Moves a path the mirror did not write (a local edit, or a file found in a folder a mirror
 * started on) to `<state>/diverged/<epoch>/<path>` so that nothing is silently destroyed.
 * An existing copy there gets a numbered suffix.
 */
export async function preserve(root: string, divergedDir: string, rel: string): Promise<string> {
  let dest = join(divergedDir, rel);
  await mkdir(dirname(dest), { recursive: true });
  for (
    let i = 1;
    await lstat(dest).then(
      () => true,
      () => false,
    );
    i++
  )
    dest = `${join(divergedDir, rel)}.${i}`;
  await rename(join(root, rel), dest);
  return dest;
}
