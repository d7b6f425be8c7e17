import { AbortedError, throwIfAborted } from '../errors.js';
import { isTemporaryError, RegistryError } from './errors.js';

/**
 * When and how often to retry a registry operation, as plain data. Retries wrap whole operations
 * (a manifest GET, a blob upload from its POST), never half a stream.
 */
export interface RetryPolicy {
  readonly name: string;
  /** Attempts in total, the first included (1 = no retry). */
  readonly maxAttempts: number;
  /** `exponential`: initial × 2^(n-1); `linear`: initial × n, for the n-th retry. */
  readonly backoff: 'exponential' | 'linear';
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Full jitter: the delay is drawn uniformly from [delay/2, delay], so clients do not march in step. */
  readonly jitter: boolean;
  /**
   * Per request: how long to wait for response headers, and for each piece of a body. A request
   * without a streamed body is also bounded end to end by this.
   */
  readonly requestTimeoutMs: number;
  /**
   * The longest `Retry-After` honoured; a registry asking for more makes the operation fail at
   * once (waiting would only meet the same limit again).
   */
  readonly maxRetryAfterMs: number;
  /** Which failures are retried; `isTemporaryError` when absent. */
  readonly retryable?: (err: unknown) => boolean;
}

/** The library's default: 5 attempts, exponential backoff from 250 ms with jitter, 60 s per request. */
export const defaultRetryPolicy: RetryPolicy = Object.freeze({
  name: 'default',
  maxAttempts: 5,
  backoff: 'exponential',
  initialDelayMs: 250,
  maxDelayMs: 8_000,
  jitter: true,
  requestTimeoutMs: 60_000,
  maxRetryAfterMs: 60_000,
});

/**
 * Gitpod image-builder's `use_retry_client` (go-retryablehttp defaults as mk3 configures them):
 * 4 attempts, linear backoff from 500 ms, 15 s per request, on connection errors, 429 and 5xx
 * except 501.
 */
export const gitpodRetryPolicy: RetryPolicy = Object.freeze({
  name: 'gitpod',
  maxAttempts: 4,
  backoff: 'linear',
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  jitter: false,
  requestTimeoutMs: 15_000,
  maxRetryAfterMs: 30_000,
});

/** One attempt, with the default request timeout (mk3 without `use_retry_client`). */
export const noRetryPolicy: RetryPolicy = Object.freeze({
  name: 'none',
  maxAttempts: 1,
  backoff: 'exponential',
  initialDelayMs: 0,
  maxDelayMs: 0,
  jitter: false,
  requestTimeoutMs: 60_000,
  maxRetryAfterMs: 0,
});

export const retryPolicies: Readonly<Record<'default' | 'gitpod' | 'none', RetryPolicy>> = Object.freeze({
  default: defaultRetryPolicy,
  gitpod: gitpodRetryPolicy,
  none: noRetryPolicy,
});

/**
 * Parses `Retry-After` (delta seconds or an HTTP date) into milliseconds from `now`; undefined
 * when absent or unparseable.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** The wait before retry number `retry` (1 for the first retry), before any `Retry-After`. */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const base = policy.backoff === 'linear' ? policy.initialDelayMs * retry : policy.initialDelayMs * 2 ** (retry - 1);
  const capped = Math.min(base, policy.maxDelayMs);
  return policy.jitter ? Math.round(capped / 2 + (random() * capped) / 2) : capped;
}

export interface RetryInfo {
  /** The attempt that failed (1-based). */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
}

export interface RetryOptions {
  readonly signal?: AbortSignal | undefined;
  /** Called before each wait; the place to emit a progress event. */
  readonly onRetry?: ((info: RetryInfo) => void) | undefined;
}

/**
 * Runs `operation` until it succeeds, fails with a non-retryable error, or runs out of attempts.
 * The last error is thrown unchanged. `operation` receives the 1-based attempt number.
 */
export async function withRetries<T>(policy: RetryPolicy, operation: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const retryable = policy.retryable ?? isTemporaryError;
  for (let attempt = 1; ; attempt++) {
    throwIfAborted(options.signal);
    try {
      return await operation(attempt);
    } catch (err) {
      if (attempt >= policy.maxAttempts || options.signal?.aborted || !retryable(err)) throw err;
      let delayMs = backoffDelay(policy, attempt);
      const retryAfter = err instanceof RegistryError ? err.retryAfterMs : undefined;
      if (retryAfter !== undefined) {
        if (retryAfter > policy.maxRetryAfterMs) throw err;
        delayMs = Math.max(delayMs, retryAfter);
      }
      options.onRetry?.({ attempt, delayMs, error: err });
      await sleep(delayMs, options.signal);
    }
  }
}

/** Waits `ms`, rejecting with `AbortedError` as soon as the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortedError('operation aborted', { cause: signal?.reason }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
