import { getMaxListeners, setMaxListeners } from 'node:events';
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import pLimit, { type LimitFunction } from 'p-limit';
import { findChallenge, parseChallenges, type Challenge } from './challenge.js';
import { isPasswordCredential, isRegistryTokenCredential, type Credential, type CredentialProvider } from './credentials.js';
import { dockerConfigCredentials } from './dockerconfig.js';
import { describeError, redactUrl, RegistryError } from './errors.js';
import type { RegistryEvent } from './events.js';
import { apiHost, isLoopbackHost } from './hosts.js';
import { REGISTRY_DEFAULTS, type RegistryClientOptions, type RegistryTlsOptions } from './options.js';
import { RegistryRepository } from './repository.js';
import { withRetries, type RetryPolicy } from './retry.js';
import { credentialOwner, fetchToken, TokenCache } from './token.js';
import { discardBody, errorFromResponse, HttpTransport, type HttpRequest, type HttpResponse, type RequestBody, type TlsOptions } from './transport.js';

/** How a registry wants to be authenticated, learnt from `GET /v2/`. */
export type AuthScheme = 'none' | 'basic' | 'bearer';

export interface PingResult {
  /** The origin the registry answered on (`https://host` or, for loopback/insecure, `http://host`). */
  readonly origin: string;
  readonly auth: AuthScheme;
}

/** One request of the client's protocol layer; see `RegistryClient.send`. */
export interface SendRequest {
  readonly method: HttpRequest['method'];
  /** A path under the registry origin (`/v2/...`) or an absolute URL (an upload `Location`). */
  readonly target: string | URL;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly body?: RequestBody | undefined;
  /** The token scopes the request needs (`repository:NAME:pull`). */
  readonly scopes: readonly string[];
  /** Statuses that count as success; anything else becomes a `RegistryError`. */
  readonly expect: readonly number[];
  /** For messages: what is being done (`push blob`) and to what (`repo@sha256:…`). */
  readonly action: string;
  readonly reference?: string | undefined;
  readonly followRedirects?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

interface Endpoint {
  readonly origin: string;
  readonly challenge: Challenge | undefined;
}

/**
 * A client for one registry host: the connection pool, the scheme and auth challenge learnt from
 * the ping, the credential, and the bearer-token cache are shared by every repository of the
 * host. Repositories (`client.repository(name)`) implement the oci `Target` interfaces.
 */
export class RegistryClient {
  /** The registry as references name it (`docker.io`, `host:5000`). */
  readonly registry: string;
  /** Where API requests go (`registry-1.docker.io` for Docker Hub). */
  readonly host: string;
  readonly retryPolicy: RetryPolicy;
  readonly monolithicUploadLimit: number;
  readonly uploadChunkSize: number;
  readonly #options: RegistryClientOptions;
  readonly #insecure: boolean;
  readonly #tokens = new TokenCache();
  readonly #uploads: LimitFunction;
  #transport: Promise<HttpTransport> | undefined;
  #endpoint: Promise<Endpoint> | undefined;
  /** Updated when a request meets a challenge the ping did not announce. */
  #challenge: Challenge | undefined;
  #credential: Promise<Credential | undefined> | undefined;
  #closed = false;

  constructor(registry: string, options: RegistryClientOptions = {}) {
    if (registry === '' || /[/\s]/.test(registry)) {
      throw new RegistryError({ code: 'NAME_INVALID', message: `invalid registry host ${JSON.stringify(registry.slice(0, 100))}` });
    }
    this.registry = registry;
    this.host = apiHost(registry);
    this.#options = options;
    this.#insecure = (options.insecureRegistries ?? []).some((h) => h === registry || h === this.host);
    this.retryPolicy = options.retryPolicy ?? REGISTRY_DEFAULTS.retryPolicy;
    this.monolithicUploadLimit = options.monolithicUploadLimit ?? REGISTRY_DEFAULTS.monolithicUploadLimit;
    this.uploadChunkSize = options.uploadChunkSize ?? REGISTRY_DEFAULTS.uploadChunkSize;
    this.#uploads = pLimit(Math.max(1, options.maxConcurrentUploads ?? REGISTRY_DEFAULTS.maxConcurrentUploads));
  }

  /** A repository of this registry (`library/alpine`, `team/app`). */
  repository(name: string): RegistryRepository {
    return new RegistryRepository(this, name);
  }

  /** `GET /v2/`: which origin answers and which auth scheme it asks for. */
  async ping(options: { signal?: AbortSignal } = {}): Promise<PingResult> {
    const endpoint = await this.#resolveEndpoint(options.signal);
    const challenge = this.#challenge ?? endpoint.challenge;
    return { origin: endpoint.origin, auth: challenge === undefined ? 'none' : (challenge.scheme as AuthScheme) };
  }

  /**
   * Verifies the credential against the registry, as `docker login` does: Basic credentials on
   * `/v2/`, or a token for no scope at the realm. Throws `RegistryError` UNAUTHORIZED on refusal.
   */
  async checkLogin(options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.withRetries('log in', async () => {
      const response = await this.send({ method: 'GET', target: '/v2/', scopes: [], expect: [200], action: 'log in', signal: options.signal });
      await discardBody(response.body);
    }, options.signal);
  }

  /** Runs `operation` under the client's retry policy, reporting each retry as an event. */
  async withRetries<T>(operation: string, fn: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const policy = this.retryPolicy;
    return await withRetries(policy, fn, {
      signal,
      onRetry: ({ attempt, delayMs, error }) =>
        this.emit({
          type: 'retry',
          registry: this.registry,
          operation,
          attempt,
          maxAttempts: policy.maxAttempts,
          delayMs,
          cause: describeError(error),
        }),
    });
  }

  /** Runs an upload within the client's bound on concurrent uploads. */
  limitUpload<T>(fn: () => Promise<T>): Promise<T> {
    return this.#uploads(fn);
  }

  emit(event: RegistryEvent): void {
    this.#options.onEvent?.(event);
  }

  /**
   * Sends one request with authentication: the registry's Basic or Bearer scheme, a token for the
   * request's scopes from the cache or the realm, and one fresh attempt after a 401 when the body
   * can be sent again. Statuses outside `expect` throw `RegistryError` with the registry's error
   * list; 401 after a fresh token is UNAUTHORIZED, or DENIED when the token lacks the scope.
   */
  async send(request: SendRequest): Promise<HttpResponse> {
    const transport = await this.#getTransport();
    const endpoint = await this.#resolveEndpoint(request.signal);
    const url = typeof request.target === 'string' ? new URL(request.target, endpoint.origin) : request.target;
    if (request.signal !== undefined) allowConcurrentListeners(request.signal);
    const replayable = request.body === undefined || request.body instanceof Uint8Array;
    for (let attempt = 1; ; attempt++) {
      const auth = await this.#authorization(request.scopes, request.signal);
      const response = await transport.send({
        method: request.method,
        url,
        headers: request.headers,
        authorization: auth?.header,
        body: request.body,
        timeoutMs: this.retryPolicy.requestTimeoutMs,
        signal: request.signal,
        followRedirects: request.followRedirects,
      });
      if (request.expect.includes(response.status)) return response;
      if (response.status !== 401) {
        throw await errorFromResponse(response, request.method, { registry: this.registry, reference: request.reference, action: request.action });
      }
      const challenges = parseChallenges(response.headers['www-authenticate']);
      const challenge = findChallenge(challenges, 'bearer') ?? findChallenge(challenges, 'basic');
      if (auth?.token !== undefined && auth.realm !== undefined) this.#tokens.invalidate(auth.realm, auth.service, auth.token);
      // Retry once when the challenge is new to us (a registry whose /v2/ is open but whose
      // repositories are not), or when a cached token may simply have expired.
      const learnt = challenge !== undefined && !sameChallenge(challenge, this.#challenge ?? endpoint.challenge);
      if (challenge !== undefined) this.#challenge = challenge;
      if (attempt === 1 && replayable && (learnt || auth?.cached === true)) {
        await discardBody(response.body);
        continue;
      }
      const err = await errorFromResponse(response, request.method, { registry: this.registry, reference: request.reference, action: request.action });
      throw await this.#authError(err, challenge, request);
    }
  }

  async #authError(err: RegistryError, challenge: Challenge | undefined, request: SendRequest): Promise<RegistryError> {
    const credential = await this.#getCredential();
    const about = request.reference === undefined ? '' : ` ${request.reference}`;
    const where = `(${err.method ?? request.method} ${err.url ?? ''} → ${err.status ?? 401})`;
    if (challenge?.params.error === 'insufficient_scope' && credential !== undefined) {
      const scope = challenge.params.scope ?? request.scopes.join(' ');
      return new RegistryError({
        code: 'DENIED',
        message: `${request.action}${about}: ${this.registry} does not grant ${scope} to ${credentialOwner(credential)} ${where}`,
        registry: this.registry,
        reference: request.reference,
        method: err.method,
        url: err.url,
        status: err.status,
        errors: err.errors,
      });
    }
    const reason = credential === undefined ? 'authentication required and no credentials are configured for this registry' : `${this.registry} refused ${credentialOwner(credential)}`;
    return new RegistryError({
      code: 'UNAUTHORIZED',
      message: `${request.action}${about}: ${reason} ${where}`,
      registry: this.registry,
      reference: request.reference,
      method: err.method,
      url: err.url,
      status: err.status,
      errors: err.errors,
    });
  }

  async #authorization(
    scopes: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<{ header: string; token?: string; realm?: string; service?: string | undefined; cached?: boolean } | undefined> {
    const endpoint = await this.#resolveEndpoint(signal);
    const challenge = this.#challenge ?? endpoint.challenge;
    if (challenge === undefined) return undefined;
    const credential = await this.#getCredential();
    if (challenge.scheme === 'basic') {
      if (!isPasswordCredential(credential)) return undefined;
      return { header: `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}` };
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (isRegistryTokenCredential(credential)) return { header: `Bearer ${credential.registryToken}` };
    const realm = challenge.params.realm;
    if (realm === undefined || realm === '') {
      throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `${this.registry}: a Bearer challenge without a realm`, registry: this.registry });
    }
    const service = challenge.params.service;
    const cached = this.#tokens.get(realm, service, scopes);
    const token =
      cached ??
      (await this.#tokens.getOrFetch(realm, service, scopes, async () =>
        fetchToken(await this.#getTransport(), {
          realm,
          service,
          scopes,
          credential,
          oauth2Password: this.#options.oauth2Password ?? REGISTRY_DEFAULTS.oauth2Password,
          timeoutMs: this.retryPolicy.requestTimeoutMs,
          signal,
          registry: this.registry,
        }),
      ));
    return { header: `Bearer ${token.token}`, token: token.token, realm, service, cached: cached !== undefined };
  }

  #getCredential(): Promise<Credential | undefined> {
    this.#credential ??= (async () => {
      const source = this.#options.credentials;
      const provider: CredentialProvider = typeof source === 'function' ? source : source !== undefined ? () => source : dockerConfigCredentials();
      return await provider(this.registry);
    })();
    return this.#credential;
  }

  #getTransport(): Promise<HttpTransport> {
    if (this.#closed) return Promise.reject(new RegistryError({ code: 'CLIENT_CLOSED', message: `${this.registry}: the client is closed`, registry: this.registry }));
    this.#transport ??= (async () => {
      const tls = await loadTls(this.#options.tls);
      return new HttpTransport({
        tls: { ...tls, insecureSkipVerify: this.#insecure },
        userAgent: this.#options.userAgent ?? REGISTRY_DEFAULTS.userAgent,
        connections: this.#options.connections ?? REGISTRY_DEFAULTS.connections,
      });
    })();
    return this.#transport;
  }

  #resolveEndpoint(signal: AbortSignal | undefined): Promise<Endpoint> {
    if (this.#endpoint === undefined) {
      const pending = this.#ping(signal);
      this.#endpoint = pending;
      // A failed ping is not cached: the next operation (or retry) pings again.
      pending.catch(() => {
        if (this.#endpoint === pending) this.#endpoint = undefined;
      });
    }
    return this.#endpoint;
  }

  /**
   * HTTPS first; plain HTTP only for loopback and insecure hosts, and only when HTTPS failed for a
   * reason other than an untrusted certificate (which needs a CA, not a downgrade).
   */
  async #ping(signal: AbortSignal | undefined): Promise<Endpoint> {
    const transport = await this.#getTransport();
    const plainAllowed = this.#insecure || isLoopbackHost(this.host);
    const origins = plainAllowed ? [`https://${this.host}`, `http://${this.host}`] : [`https://${this.host}`];
    let lastError: unknown;
    for (const origin of origins) {
      const url = new URL('/v2/', origin);
      let response: HttpResponse;
      try {
        response = await transport.send({ method: 'GET', url, timeoutMs: this.retryPolicy.requestTimeoutMs, signal, followRedirects: true });
      } catch (err) {
        lastError = err;
        if (err instanceof RegistryError && err.code === 'TLS_ERROR') throw err;
        if (!(err instanceof RegistryError)) throw err;
        continue;
      }
      if (response.status === 200) {
        await discardBody(response.body);
        return { origin, challenge: undefined };
      }
      if (response.status === 401) {
        const challenges = parseChallenges(response.headers['www-authenticate']);
        await discardBody(response.body);
        const challenge = findChallenge(challenges, 'bearer') ?? findChallenge(challenges, 'basic');
        if (challenge === undefined) {
          throw new RegistryError({
            code: 'PROTOCOL_ERROR',
            message: `${this.registry}: 401 without a Basic or Bearer challenge (GET ${redactUrl(url)})`,
            registry: this.registry,
            status: 401,
          });
        }
        return { origin, challenge };
      }
      const err = await errorFromResponse(response, 'GET', { registry: this.registry, action: 'ping the registry' });
      if (response.status === 400 && lastError !== undefined) {
        // Plain HTTP to a TLS port ("Client sent an HTTP request to an HTTPS server"): the host
        // speaks HTTPS and the handshake failed for another reason, e.g. a refused or missing
        // client certificate that TLS 1.3 reports only by closing the connection.
        throw new RegistryError({
          code: 'TLS_ERROR',
          message: `${this.registry} speaks HTTPS only and the TLS connection failed (${(lastError as Error).message}); does it require a client certificate?`,
          registry: this.registry,
          cause: lastError,
        });
      }
      if (response.status === 404) {
        throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `${this.registry} does not speak the registry API v2 (GET ${redactUrl(url)} → 404)`, registry: this.registry, status: 404 });
      }
      throw err;
    }
    throw lastError;
  }

  /** Closes the connection pool. Repositories of this client stop working. */
  async close(): Promise<void> {
    this.#closed = true;
    const transport = this.#transport;
    this.#transport = undefined;
    if (transport) await (await transport).close();
  }
}

/**
 * Every request in flight listens on the caller's signal; one signal commonly covers a whole copy
 * with many parallel requests, which is no leak. Raise Node's warning threshold accordingly.
 */
function allowConcurrentListeners(signal: AbortSignal): void {
  if (getMaxListeners(signal) < MAX_SIGNAL_LISTENERS) setMaxListeners(MAX_SIGNAL_LISTENERS, signal);
}

const MAX_SIGNAL_LISTENERS = 1000;

function sameChallenge(a: Challenge, b: Challenge | undefined): boolean {
  return b !== undefined && a.scheme === b.scheme && a.params.realm === b.params.realm && a.params.service === b.params.service;
}

async function loadTls(options: RegistryTlsOptions | undefined): Promise<TlsOptions> {
  if (options === undefined) return {};
  // Node's `ca` replaces the default trust store; keep the public roots and add the registry's.
  const caList: (string | Buffer)[] = [];
  if (options.ca !== undefined) caList.push(...(Array.isArray(options.ca) ? (options.ca as (string | Buffer)[]) : [options.ca as string | Buffer]));
  if (options.caFile !== undefined) caList.push(await readFile(options.caFile));
  const cert = options.cert ?? (options.certFile === undefined ? undefined : await readFile(options.certFile));
  const key = options.key ?? (options.keyFile === undefined ? undefined : await readFile(options.keyFile));
  return {
    ...(caList.length === 0 ? {} : { ca: [...rootCertificates, ...caList] }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
  };
}
