/**
 * Turns any failure into the one line a command prints: what it was doing, with which file,
 * what is wrong, and a stable code in brackets.
 */
export class CliError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'CliError';
    this.code = code;
  }
}

const SYSTEM_MESSAGES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a parent is not a directory',
  ENOSPC: 'no space left on device',
  EEXIST: 'already exists',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available',
};

interface ErrorLike {
  code?: unknown;
  message?: unknown;
}

/** Runs `fn`; a failure becomes a CliError that names `what` (usually a file). */
export async function about<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toCliError(err, what);
  }
}

export function toCliError(err: unknown, what?: string): CliError {
  if (err instanceof CliError) return err;
  const e = (err ?? {}) as ErrorLike;
  const code = typeof e.code === 'string' ? e.code : 'ERR_INTERNAL';
  const text = SYSTEM_MESSAGES[code] ?? (typeof e.message === 'string' ? e.message : String(err));
  return new CliError(code, what ? `${what}: ${text}` : text);
}

/** The one stderr line for a failure. */
export function formatError(err: CliError): string {
  const firstLine = err.message.split('\n', 1)[0];
  return `mimic: ${firstLine} [${err.code}]`;
}
