import { StevedoreError } from '../errors.js';
import { NotFoundError } from '../oci/index.js';

/** One entry of the distribution-spec error list (`{"errors": [{code, message, detail}]}`). */
export interface RegistryErrorDetail {
  readonly code: string;
  readonly message: string;
  readonly detail?: unknown;
}

/**
 * The distribution-spec error codes. A registry may send others; they are kept in `errors` and,
 * when the first entry's code is not one of these, the error's own `code` comes from the status.
 */
export const REGISTRY_ERROR_CODES = [
  'BLOB_UNKNOWN',
  'BLOB_UPLOAD_INVALID',
  'BLOB_UPLOAD_UNKNOWN',
  'DIGEST_INVALID',
  'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID',
  'MANIFEST_UNKNOWN',
  'MANIFEST_UNVERIFIED',
  'NAME_INVALID',
  'NAME_UNKNOWN',
  'SIZE_INVALID',
  'TAG_INVALID',
  'UNAUTHORIZED',
  'DENIED',
  'UNSUPPORTED',
  'TOOMANYREQUESTS',
] as const;

/**
 * Stable codes of `RegistryError`: a distribution-spec code, or one derived from the HTTP status
 * or the transport failure when the registry did not name one.
 */
export type RegistryErrorCode =
  | (typeof REGISTRY_ERROR_CODES)[number]
  /** 404 without a distribution-spec body. */
  | 'NOT_FOUND'
  /** 5xx (and 501). */
  | 'SERVER_ERROR'
  /** Any other unexpected status. */
  | 'UNEXPECTED_STATUS'
  /** The registry answered, but not with what the protocol requires (missing header, bad JSON). */
  | 'PROTOCOL_ERROR'
  /** No connection, a reset, or a body cut short. */
  | 'CONNECTION_FAILED'
  /** No response headers, or no body bytes, within the request timeout. */
  | 'TIMEOUT'
  /** The TLS handshake failed (unknown CA, wrong host name, client certificate refused). */
  | 'TLS_ERROR'
  /** A blob upload was interrupted and its content cannot be sent again (a one-shot stream). */
  | 'UPLOAD_INTERRUPTED'
  /** The client was closed; nothing more can be sent through it. */
  | 'CLIENT_CLOSED';

export interface RegistryErrorInit {
  readonly code: RegistryErrorCode;
  readonly message: string;
  /** The registry host (`host:port`). */
  readonly registry?: string | undefined;
  /** The repository or `repository:tag` / `repository@digest` the operation was about. */
  readonly reference?: string | undefined;
  readonly method?: string | undefined;
  /** Already redacted by `redactUrl`. */
  readonly url?: string | undefined;
  readonly status?: number | undefined;
  readonly errors?: readonly RegistryErrorDetail[] | undefined;
  /** Milliseconds the registry asked us to wait (`Retry-After`), when it did. */
  readonly retryAfterMs?: number | undefined;
  readonly cause?: unknown;
}

/**
 * A failed registry operation: the HTTP status (absent for transport failures), the registry's
 * own error list, the method and the redacted URL, and the reference it was about. Messages never
 * contain credentials, tokens or signed query strings.
 */
export class RegistryError extends StevedoreError {
  override name = 'RegistryError';
  override readonly code: RegistryErrorCode;
  readonly registry: string | undefined;
  readonly reference: string | undefined;
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly status: number | undefined;
  readonly errors: readonly RegistryErrorDetail[];
  readonly retryAfterMs: number | undefined;

  constructor(init: RegistryErrorInit) {
    super(init.code, init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.registry = init.registry;
    this.reference = init.reference;
    this.method = init.method;
    this.url = init.url;
    this.status = init.status;
    this.errors = init.errors ?? [];
    this.retryAfterMs = init.retryAfterMs;
  }
}

export function isRegistryError(err: unknown): err is RegistryError {
  return err instanceof RegistryError;
}

const NOT_FOUND_CODES: ReadonlySet<string> = new Set(['NOT_FOUND', 'MANIFEST_UNKNOWN', 'BLOB_UNKNOWN', 'NAME_UNKNOWN']);

/** True for "this manifest, blob, tag or repository does not exist", from a registry or a store. */
export function isNotFoundError(err: unknown): boolean {
  if (err instanceof NotFoundError) return true;
  return err instanceof RegistryError && NOT_FOUND_CODES.has(err.code);
}

/** True when the registry refused the credentials (401) or the permission (403, insufficient scope). */
export function isAuthError(err: unknown): boolean {
  return err instanceof RegistryError && (err.code === 'UNAUTHORIZED' || err.code === 'DENIED');
}

/**
 * Transport error codes (Node's and undici's) that describe a failure worth retrying: the peer
 * went away or was too slow. A refused connection counts (a registry restarting); a name that
 * does not resolve does not (EAI_AGAIN, the temporary DNS failure, does).
 */
const TEMPORARY_TRANSPORT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);

/**
 * Whether retrying the operation that failed with `err` may succeed: connection failures and
 * timeouts, 408, 429 and 5xx except 501 (not implemented is a permanent answer).
 */
export function isTemporaryError(err: unknown): boolean {
  if (err instanceof RegistryError) {
    if (err.code === 'CONNECTION_FAILED' || err.code === 'TIMEOUT') return true;
    const status = err.status;
    if (status === undefined) return false;
    return status === 408 || status === 429 || (status >= 500 && status !== 501 && status <= 599);
  }
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TEMPORARY_TRANSPORT_CODES.has(code);
}

/** Query parameters whose values are public and help diagnose (digests, mounts, pagination). */
const PUBLIC_QUERY_PARAMETERS: ReadonlySet<string> = new Set(['digest', 'mount', 'from', 'n', 'last', 'service', 'scope']);

/**
 * A URL safe to show: no user info, and every query value except the public ones above replaced,
 * since storage redirects carry signatures and upload URLs carry opaque state.
 */
export function redactUrl(input: string | URL): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return '(invalid URL)';
  }
  url.username = '';
  url.password = '';
  const params = [...url.searchParams.keys()];
  if (params.length === 0) return url.toString();
  const redacted = new URLSearchParams();
  for (const [key, value] of url.searchParams) redacted.append(key, PUBLIC_QUERY_PARAMETERS.has(key) ? value : 'REDACTED');
  url.search = redacted.toString();
  return url.toString();
}

/** The status code's fallback error code, when the registry sent no distribution-spec list. */
export function codeForStatus(status: number): RegistryErrorCode {
  if (status === 401) return 'UNAUTHORIZED';
  if (status === 403) return 'DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 429) return 'TOOMANYREQUESTS';
  if (status >= 500) return 'SERVER_ERROR';
  return 'UNEXPECTED_STATUS';
}

const KNOWN_CODES: ReadonlySet<string> = new Set(REGISTRY_ERROR_CODES);

/** The error code for a response: the registry's first known code, else one from the status. */
export function codeForResponse(status: number, errors: readonly RegistryErrorDetail[]): RegistryErrorCode {
  // A 5xx or 429 keeps its transport meaning whatever the body says.
  if (status >= 500) return 'SERVER_ERROR';
  const named = errors.find((e) => KNOWN_CODES.has(e.code));
  return named ? (named.code as RegistryErrorCode) : codeForStatus(status);
}

/**
 * Parses a distribution-spec error body. Tolerant: registries and proxies send HTML, plain text or
 * nothing; only well-formed entries are kept, each string capped so a hostile body cannot bloat
 * the error.
 */
export function parseErrorBody(text: string): RegistryErrorDetail[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return [];
  }
  const list = (json as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(list)) return [];
  const out: RegistryErrorDetail[] = [];
  for (const entry of list.slice(0, 20)) {
    const code = (entry as { code?: unknown } | null)?.code;
    if (typeof code !== 'string') continue;
    const message = (entry as { message?: unknown }).message;
    const detail = (entry as { detail?: unknown }).detail;
    out.push({
      code: code.slice(0, 100),
      message: typeof message === 'string' ? message.slice(0, 1000) : '',
      ...(detail === undefined || detail === null ? {} : { detail }),
    });
  }
  return out;
}

/** A one-line summary of a registry error list: `MANIFEST_UNKNOWN: manifest unknown`. */
export function summariseErrors(errors: readonly RegistryErrorDetail[]): string {
  return errors.map((e) => (e.message ? `${e.code}: ${e.message}` : e.code)).join('; ');
}

/** A failure's stable code and message, for events (`{code: 'ERROR'}` when it has none). */
export function describeError(err: unknown): { code: string; message: string } {
  const code = (err as { code?: unknown } | null)?.code;
  return { code: typeof code === 'string' ? code : 'ERROR', message: err instanceof Error ? err.message : String(err) };
}
