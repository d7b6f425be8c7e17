import { Readable } from 'node:stream';
import { AbortedError } from '../errors.js';
import { isTemporaryError, RegistryError } from './errors.js';
import { backoffDelay, sleep, type RetryPolicy } from './retry.js';

/** An open response body and the blob offset its first byte is at. */
export interface BodyAt {
  readonly body: Readable;
  readonly start: number;
  /** Maps a failure of this body to a typed error (a reset becomes CONNECTION_FAILED, ...). */
  readonly classify: (err: unknown) => unknown;
}

export interface ResumableDownloadOptions {
  /** Opens the blob from `offset` (a `Range` request when > 0); the answer may start earlier. */
  readonly open: (offset: number) => Promise<BodyAt>;
  readonly size: number;
  readonly policy: RetryPolicy;
  readonly signal?: AbortSignal | undefined;
  /** What is being fetched, for messages. */
  readonly what: string;
  readonly registry: string;
  readonly onProgress?: ((transferred: number) => void) | undefined;
  readonly onRetry?: ((attempt: number, delayMs: number, error: unknown) => void) | undefined;
}

/**
 * A blob download as one stream that survives its connection: when the body fails with a
 * temporary error (a reset, a timeout) or ends short of the blob's size, it waits per the retry
 * policy and asks again from the byte it got to (`Range: bytes=N-`), skipping what a server that
 * ignores the range sends again. Bytes flow straight from the response body (no copying); the
 * consumer's back-pressure pauses it. Verification is the consumer's `VerifyingStream`.
 */
export class ResumableDownload extends Readable {
  readonly #options: ResumableDownloadOptions;
  #body: Readable | undefined;
  /**
   * `idle` until the first read; `opening` while a request is on its way; `streaming` while a body
   * flows; `waiting` between a failure and the next attempt. Only `idle` may start a request from
   * `_read`, so a read during a retry's wait can never open a second body.
   */
  #state: 'idle' | 'opening' | 'streaming' | 'waiting' = 'idle';
  #offset = 0;
  #skip = 0;
  #attempt = 1;
  #finished = false;

  constructor(options: ResumableDownloadOptions) {
    super({ highWaterMark: 1024 * 1024 });
    this.#options = options;
  }

  override _read(): void {
    if (this.#state === 'streaming') this.#body?.resume();
    else if (this.#state === 'idle') void this.#open();
  }

  async #open(): Promise<void> {
    this.#state = 'opening';
    let opened: BodyAt;
    try {
      opened = await this.#options.open(this.#offset);
    } catch (err) {
      await this.#failed(err);
      return;
    }
    if (this.destroyed) {
      opened.body.on('error', () => undefined);
      opened.body.destroy();
      return;
    }
    if (opened.start > this.#offset) {
      this.destroy(new RegistryError({ code: 'PROTOCOL_ERROR', message: `fetch blob ${this.#options.what}: the registry resumed at byte ${opened.start}, after ${this.#offset}`, registry: this.#options.registry }));
      return;
    }
    this.#skip = this.#offset - opened.start;
    const body = opened.body;
    this.#body = body;
    this.#state = 'streaming';
    body.on('data', (chunk: Buffer) => {
      let piece = chunk;
      if (this.#skip > 0) {
        if (piece.length <= this.#skip) {
          this.#skip -= piece.length;
          return;
        }
        piece = piece.subarray(this.#skip);
        this.#skip = 0;
      }
      this.#offset += piece.length;
      this.#options.onProgress?.(this.#offset);
      if (!this.push(piece)) body.pause();
    });
    body.once('end', () => {
      this.#body = undefined;
      if (this.#offset >= this.#options.size) {
        this.#finished = true;
        this.push(null);
        return;
      }
      void this.#failed(
        new RegistryError({
          code: 'CONNECTION_FAILED',
          message: `fetch blob ${this.#options.what}: the body ended after ${this.#offset} of ${this.#options.size} bytes`,
          registry: this.#options.registry,
        }),
      );
    });
    body.once('error', (err) => {
      this.#body = undefined;
      body.destroy();
      void this.#failed(opened.classify(err));
    });
  }

  async #failed(err: unknown): Promise<void> {
    this.#state = 'waiting';
    if (this.destroyed || this.#finished) return;
    const { policy, signal } = this.#options;
    if (signal?.aborted) {
      this.destroy(new AbortedError('download aborted', { cause: signal.reason }));
      return;
    }
    if (this.#attempt >= policy.maxAttempts || !(policy.retryable ?? isTemporaryError)(err)) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    const delayMs = backoffDelay(policy, this.#attempt);
    this.#options.onRetry?.(this.#attempt, delayMs, err);
    this.#attempt++;
    try {
      await sleep(delayMs, signal);
    } catch (aborted) {
      this.destroy(aborted as Error);
      return;
    }
    if (!this.destroyed) void this.#open();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const body = this.#body;
    this.#body = undefined;
    if (body !== undefined) {
      body.on('error', () => undefined);
      body.destroy();
    }
    callback(error);
  }
}
