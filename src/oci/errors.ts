import { StevedoreError } from '../errors.js';

/** A string that should be a digest is not one (`sha256:<64 hex>` or `sha512:<128 hex>`). */
export class InvalidDigestError extends StevedoreError {
  override name = 'InvalidDigestError';
  constructor(readonly input: string, reason: string) {
    super('INVALID_DIGEST', `invalid digest ${JSON.stringify(truncate(input))}: ${reason}`);
  }
}

/** Content did not hash to the digest it was announced with. */
export class DigestMismatchError extends StevedoreError {
  override name = 'DigestMismatchError';
  constructor(readonly expected: string, readonly actual: string, what = 'content') {
    super('DIGEST_MISMATCH', `${what} digest mismatch: expected ${expected}, got ${actual}`);
  }
}

/** Content was longer or shorter than the size it was announced with. */
export class SizeMismatchError extends StevedoreError {
  override name = 'SizeMismatchError';
  constructor(readonly expected: number, readonly actual: number, what = 'content') {
    super('SIZE_MISMATCH', `${what} size mismatch: expected ${expected} bytes, got ${actual}${actual > expected ? ' or more' : ''}`);
  }
}

/** A document (manifest, index, config) exceeded its size cap. */
export class TooLargeError extends StevedoreError {
  override name = 'TooLargeError';
  constructor(readonly limit: number, what: string) {
    super('TOO_LARGE', `${what} exceeds the limit of ${limit} bytes`);
  }
}

/** A manifest, index, config or layout document does not follow the OCI specification. */
export class InvalidDocumentError extends StevedoreError {
  override name = 'InvalidDocumentError';
  constructor(readonly what: string, readonly reason: string, options?: { cause?: unknown }) {
    super('INVALID_DOCUMENT', `invalid ${what}: ${reason}`, options);
  }
}

/** A platform string (`os/architecture[/variant]`) could not be parsed. */
export class InvalidPlatformError extends StevedoreError {
  override name = 'InvalidPlatformError';
  constructor(readonly input: string, reason: string) {
    super('INVALID_PLATFORM', `invalid platform ${JSON.stringify(truncate(input))}: ${reason}`);
  }
}

/** An image reference does not follow the distribution grammar. */
export class InvalidReferenceError extends StevedoreError {
  override name = 'InvalidReferenceError';
  constructor(readonly input: string, reason: string) {
    super('INVALID_REFERENCE', `invalid reference ${JSON.stringify(truncate(input))}: ${reason}`);
  }
}

/** Content or a tag was looked up in a store that does not hold it. */
export class NotFoundError extends StevedoreError {
  override name = 'NotFoundError';
  constructor(what: string, options?: { cause?: unknown }) {
    super('NOT_FOUND', `${what} not found`, options);
  }
}

function truncate(s: string): string {
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
}
