import { StevedoreError } from '../index.js';

/** A listener could not be opened (address in use, no permission, unknown host). */
export class ListenError extends StevedoreError {
  override name = 'ListenError';
  constructor(
    readonly what: 'gRPC' | 'HTTP',
    readonly address: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('LISTEN_FAILED', `cannot listen for ${what} on ${address}: ${reason}`, options);
  }
}
