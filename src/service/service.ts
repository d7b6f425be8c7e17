import pLimit from 'p-limit';
import type { BuildEvent } from '../build/index.js';
import { isBuildStepError } from '../build/index.js';
import { AbortedError } from '../errors.js';
import { anonymousCredentials, type CredentialProvider, type RegistryClientOptions, type RetryPolicy } from '../registry/index.js';
import { allowAllPolicy, registryAuthPolicy, type RegistryAuthContext, type RegistryAuthPolicy } from './auth.js';
import type { ServiceConfig } from './config.js';
import { formatDuration } from './duration.js';
import { ServiceError, serviceStatusOf } from './errors.js';
import { MetricsRegistry, type Counter, type Gauge, type Histogram } from './metrics.js';
import { PullSecret } from './pull-secret.js';
import { BuildRecord } from './record.js';
import { dockerfileBaseRef, refCensorWords, workspaceImageRef } from './refs.js';
import { ImageResolver, RefCache } from './resolve.js';
import { isCacheHit } from './render.js';
import { runBuildPlan, type BuildPlan } from './runner.js';
import type { ImageBuildInfo, ImageBuildRequest, ImageBuildSource, ImageBuildStatus, ImageBuildUpdate, RegistryAuthRequest } from './types.js';

export interface ImageBuilderServiceOptions {
  readonly config: ServiceConfig;
  /** Shared with the api (it registers grpc_server_* there). */
  readonly metrics?: MetricsRegistry | undefined;
  /** Base URL of the HTTP listener, for log_info.url (`<base>/builds/<buildId>/log`). */
  readonly httpBaseUrl: string;
  /**
   * Registry client settings beyond the config (TLS for private CAs, a user agent). Credentials
   * and retry policies are the service's own business and are set per request.
   */
  readonly registry?: Omit<RegistryClientOptions, 'credentials' | 'retryPolicy'> | undefined;
  /** The policies behind `use_retry_client` (default: mk3's retry client, and a single attempt). */
  readonly retryPolicies?: { readonly retry: RetryPolicy; readonly noRetry: RetryPolicy } | undefined;
}

/**
 * Finished builds kept queryable at most (besides `buildRetentionMs`), the oldest forgotten
 * first: each holds up to `maxLogBytes` of log, so the count bounds the memory.
 */
export const MAX_RETAINED_BUILDS = 256;

/** Buckets of the build duration histogram, seconds (a build may take up to an hour). */
const BUILD_DURATION_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600];

interface ServiceMetrics {
  readonly started: Counter;
  readonly done: Counter;
  readonly duration: Histogram;
  readonly running: Gauge;
  readonly queued: Gauge;
  readonly attached: Counter;
  readonly alreadyBuilt: Counter;
  readonly blobs: Counter;
  readonly pushedBytes: Counter;
  readonly layerBytes: Counter;
  readonly steps: Counter;
}

/**
 * Gitpod's image builder as a library (SPEC-gitpod.md §4-§8 with Stevedore's decisions): reference
 * hashing, registry-auth policy, resolution, in-process builds with deduplication by workspace
 * ref, a bounded and censored log per build, retention of finished builds, metrics, and graceful
 * shutdown. src/api is a thin adapter over it; it prints nothing.
 */
export class ImageBuilderService {
  readonly metrics: MetricsRegistry;
  readonly #config: ServiceConfig;
  readonly #httpBaseUrl: string;
  readonly #clientOptions: RegistryClientOptions;
  readonly #resolver: ImageResolver;
  readonly #pullSecret: PullSecret | undefined;
  readonly #authContext: RegistryAuthContext;
  readonly #m: ServiceMetrics;
  readonly #limit: ReturnType<typeof pLimit>;
  /** Builds not yet finished, by workspace ref: the deduplication map. */
  readonly #running = new Map<string, BuildRecord>();
  /** Every known build (running and retained), by id. */
  readonly #byId = new Map<string, BuildRecord>();
  /** The last finished build per workspace ref, while retained. */
  readonly #finishedByRef = new Map<string, BuildRecord>();
  /** Finished builds in the order they finished (for MAX_RETAINED_BUILDS). */
  readonly #retained: BuildRecord[] = [];
  readonly #tasks = new Set<Promise<void>>();
  readonly #retentionTimers = new Set<NodeJS.Timeout>();
  #refCache: RefCache | undefined;
  #started = false;
  #shuttingDown = false;

  constructor(options: ImageBuilderServiceOptions) {
    this.#config = options.config;
    this.#httpBaseUrl = options.httpBaseUrl.replace(/\/+$/, '');
    this.metrics = options.metrics ?? new MetricsRegistry();
    this.#clientOptions = { ...options.registry, insecureRegistries: [...(options.registry?.insecureRegistries ?? []), ...options.config.stevedore.insecureRegistries] };
    this.#resolver = new ImageResolver({ clientOptions: this.#clientOptions, retryPolicies: options.retryPolicies });
    const secretFile = options.config.orchestrator.pullSecretFile;
    this.#pullSecret = secretFile === undefined ? undefined : new PullSecret(secretFile);
    const installation: CredentialProvider = this.#pullSecret?.provider ?? anonymousCredentials;
    this.#authContext = {
      baseImageRepository: options.config.orchestrator.baseImageRepository,
      workspaceImageRepository: options.config.orchestrator.workspaceImageRepository,
      installation,
    };
    this.#limit = pLimit(options.config.stevedore.concurrency);
    this.#m = registerMetrics(this.metrics);
  }

  /** Starts the ref cache refresher (if configured). */
  async start(): Promise<void> {
    if (this.#started) return;
    const cache = this.#config.refCache;
    if (cache !== undefined) {
      this.#refCache = new RefCache(this.#resolver, cache.refs, cache.intervalMs, allowAllPolicy(this.#authContext));
      await this.#refCache.start();
    }
    this.#started = true;
  }

  /** Ready = started and not shutting down. */
  get ready(): boolean {
    return this.#started && !this.#shuttingDown;
  }

  // ------------------------------------------------------------------------ resolution

  async resolveBaseImage(request: { ref: string; auth?: RegistryAuthRequest | undefined; useRetryClient?: boolean | undefined }, signal?: AbortSignal): Promise<{ ref: string }> {
    const auth = this.#policy(request.auth);
    const ref = await this.#resolver.resolve(request.ref, { auth, useRetryClient: request.useRetryClient, signal });
    return { ref };
  }

  /**
   * The workspace ref a source would build to and whether it exists: `done_success` when it
   * does, `running` while this instance builds it, `unknown` otherwise. Never builds; `baseRef`
   * is left empty, as mk3 does.
   */
  async resolveWorkspaceImage(
    request: { source?: ImageBuildSource | undefined; auth?: RegistryAuthRequest | undefined; useRetryClient?: boolean | undefined },
    signal?: AbortSignal,
  ): Promise<{ ref: string; baseRef: string; status: ImageBuildStatus }> {
    if (request.source === undefined) throw new ServiceError('INVALID_ARGUMENT', 'build source is missing');
    const auth = this.#policy(request.auth);
    const baseRef = await this.#baseRefOf(request.source, auth, request.useRetryClient, signal);
    const ref = workspaceImageRef(baseRef, this.#config.orchestrator.workspaceImageRepository);
    if (this.#running.has(ref)) return { ref, baseRef: '', status: 'running' };
    try {
      const exists = await this.#resolver.exists(ref, { auth: allowAllPolicy(this.#authContext), useRetryClient: request.useRetryClient, signal });
      return { ref, baseRef: '', status: exists ? 'done_success' : 'unknown' };
    } catch (err) {
      throw new ServiceError('INTERNAL', `cannot resolve workspace image: ${(err as Error).message}`, { cause: err });
    }
  }

  // ------------------------------------------------------------------------ builds

  /**
   * The BuildResponse stream (§4). Validation and resolution errors reject the first `next()`
   * with a ServiceError. An image that exists already gives one `done_success` without `info`;
   * otherwise a build starts (or an identical running one is joined) and the stream gives
   * `running` with `info`, then every later update up to the terminal one. `signal` is the
   * client's: when it aborts iteration ends, the build goes on.
   */
  build(request: ImageBuildRequest, signal?: AbortSignal): AsyncIterable<ImageBuildUpdate> {
    return this.#build(request, signal);
  }

  async *#build(request: ImageBuildRequest, signal: AbortSignal | undefined): AsyncGenerator<ImageBuildUpdate> {
    this.#checkAccepting();
    let source = request.source;
    if (source === undefined) throw new ServiceError('INVALID_ARGUMENT', 'build source is missing');
    let auth = this.#policy(request.auth);
    const useRetryClient = request.useRetryClient;
    const force = request.forceRebuild === true;
    const wsRepository = this.#config.orchestrator.workspaceImageRepository;

    // The shortcut: the client already knows the resolved base image name.
    const resolvedName = request.baseImageNameResolved ?? '';
    if (resolvedName !== '' && !force) {
      if (request.auth?.mode?.kind === 'selective') auth = auth.withBaseRepositoryAllowed();
      const shortcutRef = workspaceImageRef(resolvedName, wsRepository);
      if (await this.#exists(shortcutRef, auth, useRetryClient, signal)) {
        this.#m.alreadyBuilt.inc();
        yield { ref: shortcutRef, baseRef: resolvedName, status: 'done_success', message: '' };
        return;
      }
      try {
        source = { kind: 'ref', ref: await this.#resolver.resolve(resolvedName, { auth, useRetryClient, signal }) };
      } catch {
        // mk3 keeps the original source when the name does not resolve.
      }
    }

    const baseRef = await this.#baseRefOf(source, auth, useRetryClient, signal);
    const ref = workspaceImageRef(baseRef, wsRepository);

    let record = this.#running.get(ref);
    if (record === undefined && !force) {
      if (await this.#exists(ref, allowAllPolicy(this.#authContext), useRetryClient, signal)) {
        this.#m.alreadyBuilt.inc();
        yield { ref, baseRef, status: 'done_success', message: '' };
        return;
      }
      // Another caller may have started it while we looked.
      record = this.#running.get(ref);
    }
    if (record === undefined) {
      this.#checkAccepting();
      record = this.#startBuild({ source, baseRef, workspaceRef: ref, auth, forceRebuild: force }, request);
    } else {
      this.#m.attached.inc();
    }
    yield* record.follow(signal);
  }

  /**
   * Censored log chunks by workspace ref or build id (running builds, then retained finished
   * ones), replayed from the start, ending with the build. `censored` is ignored, as in mk3:
   * refs and credentials are always removed. Unknown → NOT_FOUND on the first `next()`.
   */
  logs(request: { buildRef?: string | undefined; buildId?: string | undefined; censored?: boolean | undefined }, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const find = (): BuildRecord => {
      const id = request.buildId ?? '';
      const ref = request.buildRef ?? '';
      const record = id !== '' ? this.#byId.get(id) : ref !== '' ? (this.#running.get(ref) ?? this.#finishedByRef.get(ref)) : undefined;
      if (record === undefined || (id !== '' && ref !== '' && record.ref !== ref)) throw new ServiceError('NOT_FOUND', 'build not found');
      return record;
    };
    return (async function* () {
      yield* find().log.subscribe(signal);
    })();
  }

  /** For the HTTP log endpoint: the log if `token` is the build's log token. */
  buildLog(buildId: string, token: string | undefined, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const record = this.#byId.get(buildId);
    return (async function* () {
      if (record === undefined) throw new ServiceError('NOT_FOUND', 'build not found');
      if (!record.authorizes(token)) throw new ServiceError('UNAUTHENTICATED', 'the build log needs the token of log_info.headers');
      yield* record.log.subscribe(signal);
    })();
  }

  /** This instance's running (and queued) builds. */
  listBuilds(): ImageBuildInfo[] {
    return [...this.#running.values()].map((record) => record.info());
  }

  /**
   * Stops accepting builds (UNAVAILABLE), waits for running ones up to `graceMs`, then cancels
   * them and waits until they have cleaned up.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#shuttingDown = true;
    await this.#refCache?.stop();
    const all = (): Promise<unknown> => Promise.allSettled([...this.#tasks]);
    if (this.#tasks.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, graceMs));
      });
      await Promise.race([all(), graceOver]);
      clearTimeout(timer);
      for (const record of this.#running.values()) record.controller.abort(new AbortedError('the service is shutting down'));
      await all();
    }
    for (const timer of this.#retentionTimers) clearTimeout(timer);
    this.#retentionTimers.clear();
    await this.#resolver.close();
  }

  // ------------------------------------------------------------------------ internals

  #checkAccepting(): void {
    if (this.#shuttingDown) throw new ServiceError('UNAVAILABLE', 'the image builder is shutting down');
  }

  #policy(request: RegistryAuthRequest | undefined): RegistryAuthPolicy {
    return registryAuthPolicy(request, this.#authContext);
  }

  /** §3: the base ref of a source. Status errors pass through; anything else is INTERNAL. */
  async #baseRefOf(source: ImageBuildSource, auth: RegistryAuthPolicy, useRetryClient: boolean | undefined, signal: AbortSignal | undefined): Promise<string> {
    try {
      if (source.kind === 'ref') return await this.#resolver.resolve(source.ref, { auth, useRetryClient, signal });
      if (source.dockerfilePath === '') throw new ServiceError('INVALID_ARGUMENT', 'dockerfile_path is empty');
      return dockerfileBaseRef(source, this.#config.orchestrator.baseImageRepository);
    } catch (err) {
      if (err instanceof ServiceError) throw err;
      throw new ServiceError('INTERNAL', `cannot resolve base image: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * Whether an image exists. A bad reference stays INVALID_ARGUMENT and a client that went away
   * CANCELLED; every other failure is INTERNAL, in mk3's words.
   */
  async #exists(ref: string, auth: RegistryAuthPolicy, useRetryClient: boolean | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      return await this.#resolver.exists(ref, { auth, useRetryClient, signal });
    } catch (err) {
      if (err instanceof ServiceError && (err.status === 'INVALID_ARGUMENT' || err.status === 'CANCELLED')) throw err;
      throw new ServiceError('INTERNAL', `cannot check if image is already built: ${(err as Error).message}`, { cause: err });
    }
  }

  #startBuild(plan: BuildPlan, request: ImageBuildRequest): BuildRecord {
    const record = new BuildRecord({
      ref: plan.workspaceRef,
      baseRef: plan.baseRef,
      httpBaseUrl: this.#httpBaseUrl,
      maxLogBytes: this.#config.stevedore.maxLogBytes,
      triggeredBy: request.triggeredBy,
    });
    record.log.censor.add(refCensorWords(plan.workspaceRef, plan.baseRef));
    record.log.censor.add(plan.auth.secrets(), '***');
    this.#running.set(plan.workspaceRef, record);
    this.#byId.set(record.buildId, record);
    this.#m.started.inc();
    const queued = this.#limit.activeCount >= this.#config.stevedore.concurrency;
    record.publish('running', queued ? 'waiting for a free build slot' : 'starting image build');
    record.log.line(queued ? 'waiting for a free build slot ...' : 'starting image build ...');
    if (queued) this.#m.queued.inc();
    const task = this.#limit(() => {
      if (queued) {
        this.#m.queued.dec();
        record.publish('running', 'starting image build');
        record.log.line('starting image build ...');
      }
      return this.#execute(record, plan);
    }).finally(() => {
      this.#tasks.delete(task);
      this.#retire(record);
    });
    this.#tasks.add(task);
    return record;
  }

  /** Runs a build to its terminal update. Never rejects. */
  async #execute(record: BuildRecord, plan: BuildPlan): Promise<void> {
    const limit = AbortSignal.timeout(this.#config.stevedore.maxBuildMs);
    const signal = AbortSignal.any([record.controller.signal, limit]);
    this.#m.running.inc();
    try {
      record.log.censor.add(await this.#installationSecrets(), '***');
      await runBuildPlan(record, plan, {
        config: this.#config,
        clientOptions: this.#clientOptions,
        installation: this.#authContext.installation,
        onBuildEvent: (event) => this.#observe(event),
      }, signal);
      // mk3 re-checks every success: a build that "succeeded" without an image is a failure.
      let exists: boolean;
      try {
        exists = await this.#resolver.exists(plan.workspaceRef, { auth: allowAllPolicy(this.#authContext), useRetryClient: true, signal });
      } catch (err) {
        this.#finish(record, 'done_failure', `cannot check if workspace image exists after the build: ${(err as Error).message}`);
        return;
      }
      if (exists) this.#finish(record, 'done_success', '');
      else this.#finish(record, 'done_failure', 'image build did not produce a workspace image');
    } catch (err) {
      let message: string;
      if (limit.aborted) message = `the build exceeded its time limit of ${formatDuration(this.#config.stevedore.maxBuildMs)}`;
      else if (record.controller.signal.aborted) message = `the build was cancelled: ${reasonOf(record.controller.signal)}`;
      else message = failureMessage(err);
      this.#finish(record, 'done_failure', message);
    } finally {
      this.#m.running.dec();
    }
  }

  #finish(record: BuildRecord, status: 'done_success' | 'done_failure', message: string): void {
    const success = status === 'done_success';
    record.log.line(success ? 'image build done' : `ERROR: ${message}`);
    record.publish(status, message);
    this.#m.done.inc({ success: String(success) });
    this.#m.duration.observe((Date.now() - record.startedAtMs) / 1000, { success: String(success) });
  }

  /** Moves a finished build from the running set to the retained ones, and forgets it later. */
  #retire(record: BuildRecord): void {
    // A build ends through #finish; this is the net for a failure outside it.
    if (!record.finished) this.#finish(record, 'done_failure', 'the build ended without a result');
    if (this.#running.get(record.ref) === record) this.#running.delete(record.ref);
    this.#finishedByRef.set(record.ref, record);
    this.#retained.push(record);
    while (this.#retained.length > MAX_RETAINED_BUILDS) this.#forget(this.#retained.shift()!);
    const timer = setTimeout(() => {
      this.#retentionTimers.delete(timer);
      this.#forget(record);
    }, this.#config.stevedore.buildRetentionMs);
    timer.unref();
    this.#retentionTimers.add(timer);
  }

  #forget(record: BuildRecord): void {
    if (this.#byId.get(record.buildId) === record) this.#byId.delete(record.buildId);
    if (this.#finishedByRef.get(record.ref) === record) this.#finishedByRef.delete(record.ref);
    const index = this.#retained.indexOf(record);
    if (index >= 0) this.#retained.splice(index, 1);
  }

  async #installationSecrets(): Promise<string[]> {
    try {
      return (await this.#pullSecret?.secrets()) ?? [];
    } catch {
      // An unreadable pull secret fails the registry calls that need it, with their own message.
      return [];
    }
  }

  #observe(event: BuildEvent): void {
    if (event.type === 'blob') {
      this.#m.blobs.inc({ action: event.action });
      if (event.action === 'pushed') this.#m.pushedBytes.inc({}, event.descriptor.size);
    } else if (event.type === 'step-finished') {
      this.#m.steps.inc({ cached: String(isCacheHit(event)) });
      if (event.layer?.descriptor !== undefined && !isCacheHit(event)) this.#m.layerBytes.inc({}, event.layer.descriptor.size);
    }
  }
}

function registerMetrics(metrics: MetricsRegistry): ServiceMetrics {
  return {
    started: metrics.counter('gitpod_image_builder_builds_started_total', 'Image builds started (after the already-built check).'),
    done: metrics.counter('gitpod_image_builder_builds_done_total', 'Image builds finished, by success.', ['success']),
    duration: metrics.histogram('stevedore_image_builder_build_duration_seconds', 'Time from the start of an image build to its terminal status.', BUILD_DURATION_BUCKETS, ['success']),
    running: metrics.gauge('stevedore_image_builder_builds_running', 'Image builds running now.'),
    queued: metrics.gauge('stevedore_image_builder_builds_queued', 'Image builds waiting for a build slot.'),
    attached: metrics.counter('stevedore_image_builder_builds_deduplicated_total', 'Build requests that joined an identical running build.'),
    alreadyBuilt: metrics.counter('stevedore_image_builder_builds_already_built_total', 'Build requests answered without a build: the workspace image existed.'),
    blobs: metrics.counter('stevedore_image_builder_blobs_total', 'Blobs that reached a registry during builds, by action (pushed, mounted, skipped).', ['action']),
    pushedBytes: metrics.counter('stevedore_image_builder_pushed_bytes_total', 'Bytes of blobs uploaded by builds.'),
    layerBytes: metrics.counter('stevedore_image_builder_layer_bytes_total', 'Compressed bytes of the layers builds created.'),
    steps: metrics.counter('stevedore_image_builder_steps_total', 'Dockerfile steps of builds, by whether the step cache answered them.', ['cached']),
  };
}

/** The failure as a `done_failure` message: the build error with its Dockerfile location. */
function failureMessage(err: unknown): string {
  if (isBuildStepError(err)) return `build failed: ${err.message}`;
  const { message } = serviceStatusOf(err);
  return `build failed: ${message}`;
}

function reasonOf(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'cancelled';
}
