/**
 * The one base error of Stevedore. Every error the library throws on purpose is a
 * `StevedoreError` (or a subclass that carries structured data), with a stable `code`
 * that callers and the gRPC adapter switch on. Messages never contain credentials.
 */
export class StevedoreError extends Error {
  override name = 'StevedoreError';
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

export function isStevedoreError(err: unknown): err is StevedoreError {
  return err instanceof StevedoreError;
}

/** Thrown when an operation is cancelled through its AbortSignal. */
export class AbortedError extends StevedoreError {
  override name = 'AbortedError';
  constructor(message = 'operation aborted', options?: { cause?: unknown }) {
    super('ABORTED', message, options);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('operation aborted', { cause: signal.reason });
}
