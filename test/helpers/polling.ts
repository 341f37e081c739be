/** Polling helpers shared by the end-to-end tests. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Extra text for a timeout message (agent logs, status), computed only on timeout. */
export type Details = () => string | Promise<string>;

/** `T` without its falsy members: what a truthy value of type `T` can be. */
export type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>;

export interface WaitOptions {
  /** Pause between two tries (default 50 ms). */
  intervalMs?: number;
  details?: Details;
}

/**
 * Polls `predicate` until it returns a truthy value, and returns that value. A predicate that
 * throws counts as "not yet"; its last error is part of the timeout message. The last argument
 * is either the options or just the `details` function.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  options: WaitOptions | Details = {},
): Promise<Truthy<T>> {
  const { intervalMs = 50, details } = typeof options === 'function' ? { details: options } : options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as Truthy<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const last = lastError ? `\nlast error: ${(lastError as Error).message ?? String(lastError)}` : '';
      const more = details ? `\n${await details()}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}${more}`);
    }
    await sleep(intervalMs);
  }
}
