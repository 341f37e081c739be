import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export const READ_CHUNK = 4 * 1024 * 1024;

/** Reads a file as a sequence of fresh chunks, one buffer in flight at a time. */
export async function* readChunks(fh: FileHandle, chunkSize = READ_CHUNK): AsyncGenerator<Uint8Array> {
  let position = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(chunkSize);
    const { bytesRead } = await fh.read(buf, 0, chunkSize, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buf.subarray(0, bytesRead);
  }
}

export async function* readFileChunks(path: string, chunkSize = READ_CHUNK): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    yield* readChunks(fh, chunkSize);
  } finally {
    await fh.close();
  }
}

/** A name beside `path` for a file being written; it never carries the final name. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path).slice(0, 200)}.${randomBytes(6).toString('hex')}.tmp`);
}

export interface AtomicWriteOptions {
  /** fsync the file before the rename (default false). */
  fsync?: boolean;
  /** File mode for the new file (default 0o644, less the umask). */
  mode?: number;
}

/**
 * Runs `write` against a temp file beside `path`, then renames it into place. On any error
 * the temp file is removed and nothing appears under `path`.
 */
export async function writeAtomic<T>(
  path: string,
  write: (fh: FileHandle) => Promise<T>,
  options: AtomicWriteOptions = {},
): Promise<T> {
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    const result = await write(fh);
    if (options.fsync) await fh.sync();
    await fh.close();
    await rename(tmp, path);
    return result;
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Writes chunks to a file handle, gathering small ones into larger writes. */
export async function writeChunks(fh: FileHandle, chunks: AsyncIterable<Uint8Array>): Promise<number> {
  let total = 0;
  for await (const c of chunks) {
    await writeAll(fh, c);
    total += c.length;
  }
  return total;
}

export async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let o = 0;
  while (o < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, o, bytes.length - o);
    o += bytesWritten;
  }
}
