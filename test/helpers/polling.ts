/** Polling helpers shared by the end-to-end tests. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `predicate` until it returns a truthy value, and returns that value. A predicate that
 * throws counts as "not yet"; its last error is part of the timeout message.
 */
export async function waitFor<T>(
  predicate: () => T | Promise<T>,
  timeoutMs: number,
  what: string,
  { intervalMs = 50, details }: { intervalMs?: number; details?: () => string | Promise<string> } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await predicate();
      if (value) return value as NonNullable<T>;
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
