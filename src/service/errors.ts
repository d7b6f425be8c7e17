import { AbortedError, StevedoreError } from '../errors.js';
import { BuildStepError } from '../build/index.js';
import { DockerfileError } from '../dockerfile/index.js';
import { InvalidDigestError, InvalidPlatformError, InvalidReferenceError, NotFoundError } from '../oci/index.js';
import { PlatformNotFoundError, RegistryError } from '../registry/index.js';
import { SubassemblyError, type SubassemblyErrorCode } from '../subassembly/index.js';

/** gRPC's canonical codes by name. The api maps these 1:1 to numbers; never UNKNOWN. */
export type ServiceStatusCode =
  | 'CANCELLED'
  | 'INVALID_ARGUMENT'
  | 'DEADLINE_EXCEEDED'
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'RESOURCE_EXHAUSTED'
  | 'FAILED_PRECONDITION'
  | 'ABORTED'
  | 'UNIMPLEMENTED'
  | 'INTERNAL'
  | 'UNAVAILABLE'
  | 'UNAUTHENTICATED';

/**
 * An error with the status it must reach the client with, and a message safe to show. The
 * `code` is the status name, so a caller switching on `code` sees the same closed set.
 */
export class ServiceError extends StevedoreError {
  override name = 'ServiceError';
  readonly status: ServiceStatusCode;

  constructor(status: ServiceStatusCode, message: string, options?: { cause?: unknown }) {
    super(status, message, options);
    this.status = status;
  }
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof ServiceError;
}

/** The configuration file is not valid: the message names the key's path (`orchestrator.baseImageRepository: ...`). */
export class ServiceConfigError extends StevedoreError {
  override name = 'ServiceConfigError';
  /** Every problem found, one per key path. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[], options?: { file?: string | undefined; cause?: unknown }) {
    const where = options?.file === undefined ? 'invalid service configuration' : `invalid service configuration ${options.file}`;
    super('INVALID_SERVICE_CONFIG', `${where}: ${problems.join('; ')}`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.problems = problems;
  }
}

/** Registry error codes by the status they reach a client with (anything else: INTERNAL). */
const REGISTRY_STATUS: Readonly<Record<string, ServiceStatusCode>> = {
  UNAUTHORIZED: 'UNAUTHENTICATED',
  DENIED: 'PERMISSION_DENIED',
  NAME_UNKNOWN: 'NOT_FOUND',
  MANIFEST_UNKNOWN: 'NOT_FOUND',
  BLOB_UNKNOWN: 'NOT_FOUND',
  NOT_FOUND: 'NOT_FOUND',
  TOOMANYREQUESTS: 'UNAVAILABLE',
  SERVER_ERROR: 'UNAVAILABLE',
  CONNECTION_FAILED: 'UNAVAILABLE',
  TIMEOUT: 'UNAVAILABLE',
  TLS_ERROR: 'UNAVAILABLE',
  CLIENT_CLOSED: 'UNAVAILABLE',
  NAME_INVALID: 'INVALID_ARGUMENT',
  TAG_INVALID: 'INVALID_ARGUMENT',
  DIGEST_INVALID: 'INVALID_ARGUMENT',
  UNSUPPORTED: 'UNIMPLEMENTED',
};

/** `SubassemblyError` codes by status (the subassembly module's closed set). */
const SUBASSEMBLY_STATUS: Readonly<Record<SubassemblyErrorCode, ServiceStatusCode>> = {
  INVALID_REFERENCE: 'INVALID_ARGUMENT',
  NOT_FOUND: 'NOT_FOUND',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
};

const STATUS_NAMES: ReadonlySet<string> = new Set<ServiceStatusCode>([
  'CANCELLED',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'UNAUTHENTICATED',
]);

/**
 * THE table: any error → the status it reaches a client with, and its message. Never UNKNOWN:
 * what is not recognised is INTERNAL. Dockerfile and build-step errors are the client's input
 * failing (FAILED_PRECONDITION) when they reach here at all; the service reports them as a
 * `done_failure` update instead.
 */
export function serviceStatusOf(err: unknown): { status: ServiceStatusCode; message: string } {
  const message = messageOf(err);
  if (err instanceof ServiceError) return { status: err.status, message };
  if (err instanceof AbortedError) return { status: 'CANCELLED', message };
  if (err instanceof InvalidReferenceError || err instanceof InvalidDigestError || err instanceof InvalidPlatformError) return { status: 'INVALID_ARGUMENT', message };
  if (err instanceof RegistryError) return { status: REGISTRY_STATUS[err.code] ?? 'INTERNAL', message };
  if (err instanceof NotFoundError) return { status: 'NOT_FOUND', message };
  // mk3 answers Internal "no manifest for platform linux-amd64 found"; kept for compatibility.
  if (err instanceof PlatformNotFoundError) return { status: 'INTERNAL', message };
  if (err instanceof DockerfileError || err instanceof BuildStepError) return { status: 'FAILED_PRECONDITION', message };
  if (err instanceof ServiceConfigError) return { status: 'FAILED_PRECONDITION', message };
  if (err instanceof SubassemblyError) return { status: SUBASSEMBLY_STATUS[err.code], message };
  if (err instanceof StevedoreError && err.code === 'ABORTED') return { status: 'CANCELLED', message };
  // An error from elsewhere that already carries a canonical status name (a wrapped ServiceError).
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === 'string' && STATUS_NAMES.has(status)) return { status: status as ServiceStatusCode, message };
  return { status: 'INTERNAL', message };
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message === '' ? err.name : err.message;
  return typeof err === 'string' ? err : 'internal error';
}
