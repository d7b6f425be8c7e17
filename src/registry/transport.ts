import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { AbortedError } from '../errors.js';
import { codeForResponse, parseErrorBody, redactUrl, RegistryError, summariseErrors, type RegistryErrorCode } from './errors.js';
import { parseRetryAfter } from './retry.js';

/** TLS material for one registry: a CA bundle to trust and an optional client certificate. */
export interface TlsOptions {
  /** PEM CA certificates trusted in addition to Node's bundle. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[] | undefined;
  /** PEM client certificate and key, for registries that require mutual TLS. */
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  /** Skip certificate verification (only for hosts explicitly listed as insecure). */
  readonly insecureSkipVerify?: boolean | undefined;
}

export interface TransportOptions {
  readonly tls?: TlsOptions | undefined;
  readonly userAgent: string;
  /** Connections per origin; the pool keeps them alive between requests. */
  readonly connections: number;
  readonly keepAliveTimeoutMs?: number | undefined;
}

export type RequestBody = Uint8Array | Readable;

export interface HttpRequest {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Sent only to the request's own origin, never after a redirect to another one. */
  readonly authorization?: string | undefined;
  readonly body?: RequestBody | undefined;
  /** Idle bound on the wait for headers and between body pieces. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** Follow 3xx answers (GET and HEAD only). Off for uploads, whose `Location` is data. */
  readonly followRedirects?: boolean | undefined;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Readable;
  /** The URL that answered (after redirects). */
  readonly url: URL;
}

const MAX_REDIRECTS = 10;
/** Error bodies are read up to this size, the rest is dropped. */
export const MAX_ERROR_BODY = 64 * 1024;

/**
 * The HTTP layer of one registry client: one undici Agent (a keep-alive connection pool per
 * origin) with the registry's TLS settings. It follows redirects itself so that credentials
 * never travel to another origin (blob GETs redirect to object storage), and it turns transport
 * failures into `RegistryError`s with stable codes.
 */
export class HttpTransport {
  readonly #agent: Agent;
  readonly #userAgent: string;

  constructor(options: TransportOptions) {
    const tls = options.tls;
    const ca = tls?.ca === undefined ? undefined : Array.isArray(tls.ca) ? [...(tls.ca as (string | Buffer)[])] : (tls.ca as string | Buffer);
    this.#agent = new Agent({
      connections: options.connections,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
      connect: {
        ...(ca === undefined ? {} : { ca }),
        ...(tls?.cert === undefined ? {} : { cert: tls.cert }),
        ...(tls?.key === undefined ? {} : { key: tls.key }),
        rejectUnauthorized: tls?.insecureSkipVerify !== true,
      },
    });
    this.#userAgent = options.userAgent;
  }

  /** Sends a request; any status is returned (callers decide), transport failures throw. */
  async send(request: HttpRequest): Promise<HttpResponse> {
    let url = request.url;
    const origin = url.origin;
    for (let redirects = 0; ; redirects++) {
      const headers: Record<string, string> = { 'user-agent': this.#userAgent, ...request.headers };
      // Only to the origin the caller addressed: a redirect to storage gets no credentials.
      if (request.authorization !== undefined && url.origin === origin) headers.authorization = request.authorization;
      const response = await this.#dispatch(request, url, headers, redirects === 0 ? request.body : undefined);
      const location = firstHeader(response.headers.location);
      if (request.followRedirects && isRedirect(response.status) && location !== undefined) {
        dropBody(response.body);
        if (redirects >= MAX_REDIRECTS) {
          throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `too many redirects (more than ${MAX_REDIRECTS})`, method: request.method, url: redactUrl(url) });
        }
        url = resolveLocation(location, url, request.method);
        continue;
      }
      return response;
    }
  }

  async #dispatch(request: HttpRequest, url: URL, headers: Record<string, string>, body: RequestBody | undefined): Promise<HttpResponse> {
    const options: Dispatcher.RequestOptions = {
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: request.method,
      headers,
      headersTimeout: request.timeoutMs,
      bodyTimeout: request.timeoutMs,
      ...(body === undefined ? {} : { body: body instanceof Uint8Array ? body : (body as Readable) }),
      ...(request.signal === undefined ? {} : { signal: request.signal }),
    };
    try {
      const response = await this.#agent.request(options);
      return { status: response.statusCode, headers: response.headers, body: response.body, url };
    } catch (err) {
      throw transportError(err, request.method, url, request.signal);
    }
  }

  /**
   * Refuses new requests and closes the pool: requests in flight get `graceMs` to finish (a body
   * nobody reads would otherwise hold the pool open forever), then every connection is cut.
   */
  async close(graceMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      this.#agent.close().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), graceMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (!closed) await this.#agent.destroy();
  }

  /** Aborts every request in flight. */
  async destroy(): Promise<void> {
    await this.#agent.destroy();
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function resolveLocation(location: string, base: URL, method: string): URL {
  let next: URL;
  try {
    next = new URL(location, base);
  } catch {
    throw new RegistryError({ code: 'PROTOCOL_ERROR', message: 'redirect to an invalid URL', method, url: redactUrl(base) });
  }
  if (next.protocol !== 'https:' && next.protocol !== 'http:') {
    throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `redirect to an unsupported scheme ${next.protocol}`, method, url: redactUrl(base) });
  }
  return next;
}

export function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * OpenSSL verification failures and TLS alerts: the peer speaks TLS but we do not trust it (or it
 * refuses us). Falling back to plain HTTP would be wrong; the caller needs a CA or a client cert.
 */
export function isCertificateError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') return false;
  return (
    code.includes('CERT') ||
    code.includes('SELF_SIGNED') ||
    code.startsWith('UNABLE_TO_') ||
    code === 'ERR_TLS_CERT_ALTNAME_INVALID' ||
    (code.startsWith('ERR_SSL_') && code.includes('ALERT'))
  );
}

/** Maps an undici/Node failure to a typed error; aborts stay `AbortedError`. */
export function transportError(err: unknown, method: string, url: URL, signal?: AbortSignal): Error {
  if (err instanceof RegistryError || err instanceof AbortedError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (signal?.aborted || code === 'UND_ERR_ABORTED' || (err as Error | null)?.name === 'AbortError') {
    return new AbortedError('request aborted', { cause: signal?.reason ?? err });
  }
  const where = `${method} ${redactUrl(url)}`;
  const detail = typeof code === 'string' ? code : ((err as Error | null)?.message ?? String(err));
  let kind: RegistryErrorCode = 'CONNECTION_FAILED';
  let message = `${where}: connection failed (${detail})`;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') {
    kind = 'TIMEOUT';
    message = `${where}: timed out (${detail})`;
  } else if (isCertificateError(err)) {
    kind = 'TLS_ERROR';
    message = `${where}: TLS handshake failed (${detail}); trust the registry's CA (a CA bundle option) or list the host as insecure`;
  } else if (code === 'ENOTFOUND') {
    message = `${where}: unknown host ${url.hostname}`;
  }
  return new RegistryError({ code: kind, message, method, url: redactUrl(url), registry: url.host, cause: err });
}

/** Reads a body fully; `undefined` (and the body destroyed) when it exceeds `limit` bytes. */
export async function readBody(body: Readable, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      dropBody(body);
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/** Drains and discards a body so its connection returns to the pool. Never throws. */
export async function discardBody(body: Readable): Promise<void> {
  try {
    // Small bodies are read to keep the connection; big ones are cheaper to cut.
    const read = await readBody(body, MAX_ERROR_BODY);
    void read;
  } catch {
    dropBody(body);
  }
}

/**
 * Abandons a response body: destroys it (closing its connection) with a listener in place, so
 * the abort error undici raises on the destroyed body has somewhere to go.
 */
export function dropBody(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

export interface ErrorContext {
  readonly registry?: string | undefined;
  readonly reference?: string | undefined;
  /** What was being done, for the message: `resolve`, `push blob`, ... */
  readonly action: string;
}

/**
 * Builds the `RegistryError` for an unexpected status, reading at most 64 KiB of the body for the
 * registry's error list.
 */
export async function errorFromResponse(response: HttpResponse, method: string, context: ErrorContext): Promise<RegistryError> {
  let text = '';
  try {
    const body = await readBody(response.body, MAX_ERROR_BODY);
    text = body === undefined ? '' : body.toString('utf8');
  } catch {
    // A body cut short still leaves the status to report.
  }
  const errors = method === 'HEAD' ? [] : parseErrorBody(text);
  const code = codeForResponse(response.status, errors);
  const summary = errors.length > 0 ? summariseErrors(errors) : `HTTP ${response.status}`;
  const about = context.reference === undefined ? '' : ` ${context.reference}`;
  const retryAfterMs = parseRetryAfter(firstHeader(response.headers['retry-after']));
  return new RegistryError({
    code,
    message: `${context.action}${about}: ${summary} (${method} ${redactUrl(response.url)} → ${response.status})`,
    registry: context.registry,
    reference: context.reference,
    method,
    url: redactUrl(response.url),
    status: response.status,
    errors,
    retryAfterMs,
  });
}
