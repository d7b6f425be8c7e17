import { formatReference, parseReference, type Reference } from '../oci/index.js';
import {
  gitpodRetryPolicy,
  isAuthError,
  isNotFoundError,
  noRetryPolicy,
  RegistryClientPool,
  RegistryError,
  resolveReference,
  type RegistryClientOptions,
  type RetryPolicy,
} from '../registry/index.js';
import type { RegistryAuthPolicy } from './auth.js';
import { ServiceError, serviceStatusOf } from './errors.js';

/**
 * Reference resolution as mk3's `ResolveBaseImage` does it (SPEC-gitpod.md §7): Docker
 * normalisation, the registry always asked (even for a digest), an index answered with its FIRST
 * linux/amd64 child, the result `name@digest` with the tag dropped, and registry failures mapped
 * to the status codes mk3's clients expect.
 */

export interface ResolveOptions {
  readonly auth: RegistryAuthPolicy;
  /** mk3's `use_retry_client`: the gitpod retry policy; otherwise one attempt, as mk3's default client. */
  readonly useRetryClient?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface ResolverOptions {
  /** Client settings shared by every pool (insecure hosts, TLS); credentials and retries are set per call. */
  readonly clientOptions?: RegistryClientOptions | undefined;
  /** The retry policies behind `useRetryClient` (tests shorten them). */
  readonly retryPolicies?: { readonly retry: RetryPolicy; readonly noRetry: RetryPolicy } | undefined;
}

/**
 * Registry client pools kept per (auth policy, retry choice): requests with the same credentials
 * share connections, tokens and the HTTPS-or-HTTP probe of loopback registries. Least recently
 * used pools beyond the bound are closed.
 */
export const MAX_CACHED_POOLS = 32;

export class ImageResolver {
  readonly #clientOptions: RegistryClientOptions;
  readonly #retry: RetryPolicy;
  readonly #noRetry: RetryPolicy;
  /** Exact input string → pinned reference, kept fresh by `RefCache`. */
  readonly #cache = new Map<string, string>();
  /** Insertion order is recency order (a used pool is moved to the end). */
  readonly #pools = new Map<string, RegistryClientPool>();
  #closed = false;

  constructor(options: ResolverOptions = {}) {
    this.#clientOptions = options.clientOptions ?? {};
    this.#retry = options.retryPolicies?.retry ?? gitpodRetryPolicy;
    this.#noRetry = options.retryPolicies?.noRetry ?? noRetryPolicy;
  }

  /** The shared pool for a policy and retry choice (owned by the resolver: do not close it). */
  pool(auth: RegistryAuthPolicy, useRetryClient: boolean | undefined): RegistryClientPool {
    if (this.#closed) throw new ServiceError('UNAVAILABLE', 'the image builder is shutting down');
    const key = `${useRetryClient === true ? 'retry' : 'once'}:${auth.fingerprint()}`;
    let pool = this.#pools.get(key);
    if (pool !== undefined) {
      this.#pools.delete(key);
    } else {
      pool = new RegistryClientPool({ ...this.#clientOptions, credentials: auth.provider, retryPolicy: useRetryClient === true ? this.#retry : this.#noRetry });
      while (this.#pools.size >= MAX_CACHED_POOLS) {
        const [oldestKey, oldest] = this.#pools.entries().next().value as [string, RegistryClientPool];
        this.#pools.delete(oldestKey);
        // In-flight requests of the evicted pool finish on their open connections first.
        setTimeout(() => void oldest.close().catch(() => undefined), 60_000).unref();
      }
    }
    this.#pools.set(key, pool);
    return pool;
  }

  /** Closes every pool; resolutions afterwards fail with UNAVAILABLE. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close().catch(() => undefined)));
  }

  /** Remembers a resolution for an exact input string (the ref cache). */
  remember(input: string, pinned: string): void {
    this.#cache.set(input, pinned);
  }

  cached(input: string): string | undefined {
    return this.#cache.get(input);
  }

  /**
   * Resolves `ref` to `registry/repository@digest` of an image manifest. Errors are
   * `ServiceError`s: INVALID_ARGUMENT (unparseable), NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED,
   * UNAVAILABLE (429 and unreachable registries), INTERNAL.
   */
  async resolve(ref: string, options: ResolveOptions): Promise<string> {
    const hit = this.#cache.get(ref);
    if (hit !== undefined) return hit;
    let reference: Reference;
    try {
      reference = parseReference(ref);
    } catch (err) {
      throw new ServiceError('INVALID_ARGUMENT', `cannot resolve base image ref: ${(err as Error).message}`, { cause: err });
    }
    try {
      const pool = this.pool(options.auth, options.useRetryClient);
      const resolved = await resolveReference(reference, { registries: pool, selection: 'gitpod', ...(options.signal === undefined ? {} : { signal: options.signal }) });
      return formatReference(resolved.pinned);
    } catch (err) {
      throw resolutionError(err);
    }
  }

  /**
   * Whether `ref` names a manifest (mk3: "a successful resolve"; not found → false), asked with
   * one HEAD: the workspace images checked here are the service's own single-platform manifests.
   * Other failures are thrown as `resolutionError`s, for the caller to word.
   */
  async exists(ref: string, options: ResolveOptions): Promise<boolean> {
    let reference: Reference;
    try {
      reference = parseReference(ref);
    } catch (err) {
      throw new ServiceError('INVALID_ARGUMENT', `invalid image reference: ${(err as Error).message}`, { cause: err });
    }
    try {
      const repository = this.pool(options.auth, options.useRetryClient).repository(reference);
      return await repository.referenceExists(reference.digest ?? reference.tag ?? 'latest', options.signal === undefined ? {} : { signal: options.signal });
    } catch (err) {
      throw resolutionError(err);
    }
  }
}

/** mk3's error mapping for a failed resolution. */
export function resolutionError(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  if (isNotFoundError(err)) return new ServiceError('NOT_FOUND', `cannot resolve image: ${detail}`, { cause: err });
  if (isAuthError(err)) {
    const status = err instanceof RegistryError && err.code === 'DENIED' ? 'PERMISSION_DENIED' : 'UNAUTHENTICATED';
    return new ServiceError(status, `cannot resolve image: ${detail}`, { cause: err });
  }
  if (err instanceof RegistryError && err.code === 'TOOMANYREQUESTS') {
    return new ServiceError('UNAVAILABLE', `upstream registry responds with 'too many request': ${detail}`, { cause: err });
  }
  const { status } = serviceStatusOf(err);
  return new ServiceError(status, `cannot resolve image: ${detail}`, { cause: err });
}

/**
 * mk3's `PrecachingRefResolver`: resolves the configured refs at start and every interval; a
 * lookup whose input string is exactly one of them is answered from the cache.
 */
export class RefCache {
  readonly #resolver: ImageResolver;
  readonly #refs: readonly string[];
  readonly #intervalMs: number;
  readonly #auth: RegistryAuthPolicy;
  #timer: NodeJS.Timeout | undefined;
  #controller = new AbortController();
  #running: Promise<void> | undefined;
  /** The last failure per ref (the service has no logger; the owner may read these). */
  readonly failures = new Map<string, string>();

  constructor(resolver: ImageResolver, refs: readonly string[], intervalMs: number, auth: RegistryAuthPolicy) {
    this.#resolver = resolver;
    this.#refs = refs;
    this.#intervalMs = intervalMs;
    this.#auth = auth;
  }

  /** Resolves every ref once (failures are kept, not thrown), then refreshes in the background. */
  async start(): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      this.#running ??= this.refresh().finally(() => {
        this.#running = undefined;
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async refresh(): Promise<void> {
    await Promise.all(
      this.#refs.map(async (ref) => {
        try {
          // Not through `resolve`, which would answer from the cache itself.
          const pinned = await this.#resolveFresh(ref);
          this.#resolver.remember(ref, pinned);
          this.failures.delete(ref);
        } catch (err) {
          this.failures.set(ref, err instanceof Error ? err.message : String(err));
        }
      }),
    );
  }

  async #resolveFresh(ref: string): Promise<string> {
    const pool = this.#resolver.pool(this.#auth, true);
    const resolved = await resolveReference(parseReference(ref), { registries: pool, selection: 'gitpod', signal: this.#controller.signal });
    return formatReference(resolved.pinned);
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#controller.abort();
    await this.#running?.catch(() => undefined);
    this.#controller = new AbortController();
  }
}
