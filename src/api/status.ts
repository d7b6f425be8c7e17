// THE error table of the adapter. The library decides which canonical status an error deserves
// (`serviceStatusOf`: registry codes, bad references, aborts, ...) and gives a message that is
// safe to show; this file only turns the status's name into gRPC's number and an HTTP status.
// Nothing ever reaches a client as UNKNOWN: an error the library does not know is INTERNAL.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { serviceStatusOf, type ServiceStatusCode } from '../index.js';

const GRPC_CODES: Readonly<Record<ServiceStatusCode, GrpcStatus>> = {
  CANCELLED: GrpcStatus.CANCELLED,
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: GrpcStatus.DEADLINE_EXCEEDED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  RESOURCE_EXHAUSTED: GrpcStatus.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  ABORTED: GrpcStatus.ABORTED,
  UNIMPLEMENTED: GrpcStatus.UNIMPLEMENTED,
  INTERNAL: GrpcStatus.INTERNAL,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
};

/** The same statuses for the HTTP listener (build logs, subassembly downloads). */
const HTTP_CODES: Readonly<Record<ServiceStatusCode, number>> = {
  CANCELLED: 499,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 412,
  ABORTED: 409,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
};

/**
 * gRPC code names as go-grpc-prometheus writes them in the `grpc_code` label (Go's
 * `codes.Code.String()`), so dashboards built for mk3 keep working.
 */
const GO_CODE_NAMES: Readonly<Record<GrpcStatus, string>> = {
  [GrpcStatus.OK]: 'OK',
  [GrpcStatus.CANCELLED]: 'Canceled',
  [GrpcStatus.UNKNOWN]: 'Unknown',
  [GrpcStatus.INVALID_ARGUMENT]: 'InvalidArgument',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [GrpcStatus.NOT_FOUND]: 'NotFound',
  [GrpcStatus.ALREADY_EXISTS]: 'AlreadyExists',
  [GrpcStatus.PERMISSION_DENIED]: 'PermissionDenied',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [GrpcStatus.FAILED_PRECONDITION]: 'FailedPrecondition',
  [GrpcStatus.ABORTED]: 'Aborted',
  [GrpcStatus.OUT_OF_RANGE]: 'OutOfRange',
  [GrpcStatus.UNIMPLEMENTED]: 'Unimplemented',
  [GrpcStatus.INTERNAL]: 'Internal',
  [GrpcStatus.UNAVAILABLE]: 'Unavailable',
  [GrpcStatus.DATA_LOSS]: 'DataLoss',
  [GrpcStatus.UNAUTHENTICATED]: 'Unauthenticated',
};

/** What a failed call ends with on the wire. */
export interface GrpcFailure {
  readonly code: GrpcStatus;
  readonly details: string;
}

export function grpcCodeOf(status: ServiceStatusCode): GrpcStatus {
  return GRPC_CODES[status];
}

/** Any error → the gRPC status and message the client sees. */
export function grpcFailureOf(err: unknown): GrpcFailure {
  const { status, message } = serviceStatusOf(err);
  return { code: GRPC_CODES[status], details: message };
}

/** Any error → the HTTP status and message of the HTTP listener's answer. */
export function httpFailureOf(err: unknown): { readonly statusCode: number; readonly message: string } {
  const { status, message } = serviceStatusOf(err);
  return { statusCode: HTTP_CODES[status], message };
}

/** The `grpc_code` label of a finished call. */
export function grpcCodeName(code: GrpcStatus): string {
  return GO_CODE_NAMES[code];
}
