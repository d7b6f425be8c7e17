import { AbortedError, StevedoreError } from '../errors.js';
import { DigestMismatchError, InvalidPlatformError, InvalidReferenceError, SizeMismatchError } from '../oci/index.js';
import { PlatformNotFoundError, RegistryError, isAuthError, isNotFoundError, isTemporaryError } from '../registry/index.js';

/**
 * The closed set of codes a subassembly operation fails with. The gRPC adapter maps them one to
 * one (INVALID_REFERENCE → INVALID_ARGUMENT); they are the only facts a caller may switch on.
 */
export type SubassemblyErrorCode = 'INVALID_REFERENCE' | 'NOT_FOUND' | 'UNAUTHENTICATED' | 'UNAVAILABLE' | 'INTERNAL';

/** A subassembly could not be created, found or stored; `reference` names the image it was about. */
export class SubassemblyError extends StevedoreError {
  override name = 'SubassemblyError';
  override readonly code: SubassemblyErrorCode;
  readonly reference: string | undefined;

  constructor(code: SubassemblyErrorCode, message: string, options: { readonly reference?: string | undefined; readonly cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reference = options.reference;
  }
}

export function isSubassemblyError(err: unknown): err is SubassemblyError {
  return err instanceof SubassemblyError;
}

/**
 * The code of a failure from the layers below: a malformed reference or platform is the
 * caller's mistake, a missing manifest or platform is NOT_FOUND, a refused credential is
 * UNAUTHENTICATED, and everything a retry might cure (no connection, 429, 5xx, a blob that
 * arrived corrupt) is UNAVAILABLE. What remains (an image that cannot be squashed, a full disk)
 * is INTERNAL.
 */
export function subassemblyErrorCode(err: unknown): SubassemblyErrorCode {
  if (err instanceof SubassemblyError) return err.code;
  if (err instanceof InvalidReferenceError || err instanceof InvalidPlatformError) return 'INVALID_REFERENCE';
  if (err instanceof RegistryError && err.code === 'NAME_INVALID') return 'INVALID_REFERENCE';
  if (isNotFoundError(err) || err instanceof PlatformNotFoundError) return 'NOT_FOUND';
  if (isAuthError(err)) return 'UNAUTHENTICATED';
  if (isTemporaryError(err) || err instanceof DigestMismatchError || err instanceof SizeMismatchError) return 'UNAVAILABLE';
  if (err instanceof RegistryError && (err.code === 'TLS_ERROR' || err.code === 'TOOMANYREQUESTS' || err.code === 'SERVER_ERROR')) return 'UNAVAILABLE';
  return 'INTERNAL';
}

/**
 * Wraps a failure of `what` (e.g. `squash host/app:1`) as a `SubassemblyError` whose message
 * carries the cause's (already redacted) message. An abort stays an `AbortedError`: it is the
 * caller's own doing, not a property of the image.
 */
export function toSubassemblyError(err: unknown, what: string, reference?: string): SubassemblyError | AbortedError {
  if (err instanceof SubassemblyError || err instanceof AbortedError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new SubassemblyError(subassemblyErrorCode(err), `${what}: ${detail}`, { reference, cause: err });
}
