import { chmod, chown, lchown, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A web root with owners to keep: www-data's (33) uploads, a user's (1000) config and setuid
 * script, a setgid shared folder of group 1000, and a link owned by the user.
 */
export async function webRoot(d: string): Promise<void> {
  await mkdir(join(d, 'uploads'));
  await writeFile(join(d, 'uploads', 'photo.jpg'), 'jpeg\n');
  await chown(join(d, 'uploads', 'photo.jpg'), 33, 33);
  await chown(join(d, 'uploads'), 33, 33);
  await writeFile(join(d, 'app.conf'), 'listen = 8080\n');
  await chown(join(d, 'app.conf'), 1000, 1000);
  await mkdir(join(d, 'shared'));
  await chown(join(d, 'shared'), 0, 1000);
  await chmod(join(d, 'shared'), 0o2775);
  await writeFile(join(d, 'run.sh'), '#!/bin/sh\n');
  await chown(join(d, 'run.sh'), 1000, 1000);
  await chmod(join(d, 'run.sh'), 0o4755);
  await symlink('app.conf', join(d, 'current.conf'));
  await lchown(join(d, 'current.conf'), 1000, 1000);
}
