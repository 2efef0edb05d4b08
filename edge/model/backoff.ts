/**
 * When a slot tries a failed model (or an unreadable pointer) again: after `firstMs`, then twice
 * as long after each further failure, up to `maxMs`. A failure of a different key (the pointer
 * changed) starts again from `firstMs`, so a fix published under a new prefix loads at once.
 */

export interface RetryPolicy {
  /** Wait after the first failure. */
  firstMs: number;
  /** Longest wait: an R2 directory uploaded hours after its pointer still loads within this. */
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { firstMs: 5_000, maxMs: 300_000 };

export interface Failure {
  /** What failed: a pointer (a prefix in R2), or the pointer key when KV could not be read. */
  key: string;
  /** Consecutive failures of `key`. */
  attempts: number;
  /** Epoch milliseconds before which `key` is not tried again. */
  retryAt: number;
}

export function nextFailure(
  previous: Failure | undefined,
  key: string,
  now: number,
  policy: RetryPolicy,
): Failure {
  const attempts = previous?.key === key ? previous.attempts + 1 : 1;
  const wait = Math.min(policy.maxMs, policy.firstMs * 2 ** (attempts - 1));
  return { key, attempts, retryAt: now + wait };
}
