import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { join, relative, resolve as resolvePath } from 'node:path';
import type { Transform } from 'node:stream';
import pLimit from 'p-limit';
import { AbortedError, throwIfAborted } from '../errors.js';
import { planBuild, type BaseImageConfig, type BuildPlan, type DockerfileWarning, type PlanStage } from '../dockerfile/index.js';
import {
  formatPlatform,
  parsePlatform,
  parseReference,
  type Reference,
  serializeConfig,
  serializeManifest,
  timestampFromEpoch,
  type Descriptor,
  type Digest,
  type HashedBytes,
  type Platform,
} from '../oci/index.js';
import { RegistryClientPool, type RegistryEvent } from '../registry/index.js';
import { LocalCacheStore, RegistryCache, StepCache } from './cache/index.js';
import { createExecutor, createSnapshotter, type RunExecutor, type Snapshotter } from './run/index.js';
import { finalizeConfig } from './config.js';
import { BuildContextTree, loadDockerignore } from './context.js';
import { BuildOptionsError, BuildStepError } from './errors.js';
import type { BuildEvent } from './events.js';
import { ImageResolver, parseNamedContext, type NamedContext } from './images.js';
import { convertLayerDescriptor } from './layer.js';
import { BUILD_DEFAULTS, defaultCacheDir, type BuildOptions } from './options.js';
import { writeOutputs, type OutputRecord } from './output.js';
import { layerBlob, RootfsCache, StageRootfs, type StageLayer } from './rootfs.js';
import type { BuildRuntime, StageResult, StepRecord } from './runtime.js';
import { cacheBounds, pruneCache } from './prune.js';
import { executeStage } from './stage.js';
import { BuildContentSource, LocalBlobStore } from './store.js';

/** What a successful build made. */
export interface BuildResult {
  /** The image manifest's descriptor; `digest` is what the outputs are pinned by. */
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly digest: Digest;
  /** Bytes of the image: manifest, config and every layer (compressed). */
  readonly size: number;
  readonly platform: string;
  /** Every step of every stage built, in the order they finished. */
  readonly steps: readonly StepRecord[];
  readonly outputs: readonly OutputRecord[];
  /** Dockerfile lint warnings (also sent as `warning` events). */
  readonly warnings: readonly DockerfileWarning[];
  readonly durationMs: number;
}

/** Runs a whole build (see `build` in job.ts for the public entry point). */
export async function runBuild(options: BuildOptions, emit: (event: BuildEvent) => void, signal: AbortSignal): Promise<BuildResult> {
  const started = Date.now();
  throwIfAborted(signal);
  const contextDir = resolvePath(options.context);
  const contextStat = await stat(contextDir).catch(() => undefined);
  if (contextStat === undefined || !contextStat.isDirectory()) throw new BuildOptionsError(`the build context ${contextDir} is not a directory`);
  const dockerfile = await readDockerfile(options, contextDir);
  const platform = options.platform ?? BUILD_DEFAULTS.platform;
  const buildArgs = { ...(options.buildArgs ?? {}) };
  const planOptions = {
    buildArgs,
    ...(options.target === undefined ? {} : { target: options.target }),
    platform,
    file: dockerfile.name,
  };

  const contexts = new Map<string, NamedContext>();
  for (const [name, value] of Object.entries(options.contexts ?? {})) contexts.set(name, parseNamedContext(name, value, contextDir));

  const ownPool = options.registries === undefined;
  const registries = options.registries ?? new RegistryClientPool({ ...options.registry, onEvent: registryListener(emit, options.registry?.onEvent) });
  const cacheDir = resolvePath(options.cacheDir ?? defaultCacheDir());
  const workRoot = options.workDir ?? join(cacheDir, 'tmp');
  await mkdir(workRoot, { recursive: true });
  const workDir = await mkdtemp(join(workRoot, 'stevedore-build-'));
  try {
    const images = new ImageResolver({ registries, contexts, signal });

    // Plan once to learn the base images, read their configs, plan again with them.
    const firstPlan = planBuild(dockerfile.text, planOptions);
    const baseImages = await resolveBaseConfigs(firstPlan, images, dockerfile.name);
    const plan = planBuild(dockerfile.text, { ...planOptions, baseImages });
    for (const w of plan.warnings) {
      emit({ type: 'warning', time: Date.now(), message: w.message, rule: w.rule, url: w.url, startLine: w.startLine, endLine: w.endLine, ...(w.file === undefined ? {} : { file: w.file }) });
    }
    const target = plan.stages.find((s) => s.index === plan.target);
    if (target === undefined) throw new BuildOptionsError('the plan has no target stage');
    emit({ type: 'build-started', time: Date.now(), stages: plan.stages.length, target: target.name ?? `stage-${target.index}`, platform: plan.platform });

    const epoch = options.sourceDateEpoch ?? plan.sourceDateEpoch ?? BUILD_DEFAULTS.sourceDateEpoch;
    if (!Number.isInteger(epoch) || epoch < 0) throw new BuildOptionsError(`sourceDateEpoch must be a whole number of seconds, got ${epoch}`);
    const stepCache = new StepCache({
      local: LocalCacheStore.of(cacheDir),
      remote: registryCache(options, registries),
      noCache: options.noCache === true,
      noCacheStages: new Set(options.noCacheFilter ?? []),
      scope: `${contextDir}\0${dockerfile.name}`,
      signal,
      warn: (message) => emit({ type: 'warning', time: Date.now(), message }),
    });
    const bounds = cacheBounds(options);
    const store = await LocalBlobStore.open(join(workDir, 'store'));
    const content = new BuildContentSource(store);
    const cache = new RootfsCache(cacheDir, {
      onFetch: (desc) => emit({ type: 'layer-fetched', time: Date.now(), digest: desc.digest, size: desc.size }),
    });
    const matcher = await loadDockerignore(contextDir, dockerfile.path);
    const context = new BuildContextTree(contextDir, matcher);

    // Stages: each waits for the stages it needs before it takes one of the `concurrency` slots.
    const concurrency = options.concurrency ?? BUILD_DEFAULTS.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new BuildOptionsError(`concurrency must be a positive integer, got ${concurrency}`);
    const limit = pLimit(concurrency);
    const failure = new AbortController();
    const stageSignal = AbortSignal.any([signal, failure.signal]);
    const stagesByIndex = new Map(plan.stages.map((s) => [s.index, s]));
    // The target and the chain of stages it is built FROM: their layers are the image's.
    const outputStages = new Set<number>();
    for (let stage: PlanStage | undefined = target; stage !== undefined; stage = stage.base.kind === 'stage' ? stagesByIndex.get(stage.base.index) : undefined) {
      outputStages.add(stage.index);
    }
    const running = new Map<number, Promise<StageResult>>();
    const imageRoots = new Map<string, Promise<StageRootfs>>();
    // Chosen at the first RUN (a build without RUN needs neither), and said once in the events.
    let sandbox: Promise<readonly [RunExecutor, Snapshotter]> | undefined;
    const runSandbox = (): Promise<readonly [RunExecutor, Snapshotter]> =>
      (sandbox ??= Promise.all([
        createExecutor({ kind: options.runExecutor ?? 'auto', tmpDir: workDir }),
        createSnapshotter({ mode: options.snapshotter ?? 'auto', workDir }),
      ]).then(([executor, snapshotter]) => {
        emit({ type: 'run-sandbox', time: Date.now(), executor: executor.name, snapshotter: snapshotter.mode });
        return [executor, snapshotter] as const;
      }));
    let tempCounter = 0;

    // Output layers stream to the first registry output while they are compressed; a failed early
    // upload costs nothing but time: the push after the build uploads what is not there.
    const earlyUploads: Promise<unknown>[] = [];
    const rt: BuildRuntime = {
      plan,
      file: dockerfile.name,
      context,
      store,
      content,
      cache,
      stepCache,
      images,
      workDir,
      cacheDir,
      epoch,
      created: timestampFromEpoch(epoch),
      timestamps: options.fileTimestamps ?? BUILD_DEFAULTS.fileTimestamps,
      compression: options.compression ?? BUILD_DEFAULTS.compression,
      compressionLevel: options.compressionLevel,
      isOutputStage: (index) => outputStages.has(index),
      family: options.mediaTypes ?? BUILD_DEFAULTS.mediaTypes,
      lazy: (options.baseLayers ?? BUILD_DEFAULTS.baseLayers) === 'lazy',
      secrets: options.secrets ?? {},
      ssh: options.ssh ?? {},
      allowInsecure: options.allow?.includes('security.insecure') ?? false,
      signal: stageSignal,
      emit,
      layerUpload: () => {
        const first = (options.outputs ?? []).find((o) => o.type === 'registry');
        if (first === undefined || first.type !== 'registry') return undefined;
        const reference = parseReference(first.reference);
        let built!: (descriptor: Descriptor) => void;
        const described = new Promise<Descriptor>((resolve) => (built = resolve));
        const tap = (hashed: HashedBytes): Transform => {
          const stream = registries.repository(reference).uploadTap({ signal: stageSignal, hashed });
          earlyUploads.push(
            Promise.all([stream.done, described]).then(
              ([, descriptor]) => emit({ type: 'blob', time: Date.now(), destination: `${reference.registry}/${reference.repository}`, action: 'pushed', descriptor }),
              () => undefined,
            ),
          );
          return stream;
        };
        return { tap, built };
      },
      stage: (index) => {
        let found = running.get(index);
        if (found === undefined) {
          const stage = stagesByIndex.get(index);
          if (stage === undefined) return Promise.reject(new BuildOptionsError(`stage ${index} is not part of the build`));
          found = (async () => {
            await Promise.all(stage.dependsOn.filter((d) => d !== index).map((d) => rt.stage(d)));
            return limit(() => executeStage(rt, stage));
          })();
          found.catch((err: unknown) => failure.abort(err));
          running.set(index, found);
        }
        return found;
      },
      imageRootfs: (ref, reference, platform) => {
        const key = `${ref}\0${formatPlatform(platform)}`;
        let found = imageRoots.get(key);
        if (found === undefined) {
          found = (async () => {
            const image = await images.resolve(ref, reference, platform);
            const layers: StageLayer[] = image.manifest.layers.map((desc, i) => ({
              diffId: image.config.rootfs.diff_ids[i]!,
              origin: 'base',
              blob: { descriptor: desc, fetcher: image.fetcher },
            }));
            const rootfs = StageRootfs.ofImage(layers);
            await rootfs.materialize(cache, stageSignal);
            return rootfs;
          })();
          imageRoots.set(key, found);
        }
        return found;
      },
      localContext: (name) => {
        const named = contexts.get(name);
        return named?.kind === 'local' ? named.dir : undefined;
      },
      runExecutor: async () => (await runSandbox())[0],
      snapshotter: async () => (await runSandbox())[1],
      tempDir: async (prefix) => {
        const dir = join(workDir, 'tmp', `${prefix}${++tempCounter}`);
        await mkdir(dir, { recursive: true });
        return dir;
      },
    };

    for (const stage of plan.stages) void rt.stage(stage.index).catch(() => undefined);
    let results: StageResult[];
    try {
      results = await Promise.all(plan.stages.map((s) => rt.stage(s.index)));
    } catch (err) {
      // Let the other stages stop before the work directory goes away.
      failure.abort(err);
      await Promise.allSettled([...running.values()]);
      if (signal.aborted && !(err instanceof AbortedError)) throw new AbortedError('build aborted', { cause: signal.reason });
      throw err;
    }
    const final = results.find((r) => r.index === plan.target)!;
    await stepCache.saveIndexes();

    // The image: the target stage's config (finalised, with the --label labels) and manifest.
    const labels = options.labels ?? {};
    const withLabels = Object.keys(labels).length === 0 ? final.config : { ...final.config, config: { ...final.config.config, Labels: { ...(final.config.config?.Labels ?? {}), ...labels } } };
    const config = serializeConfig(finalizeConfig(withLabels, rt.created), rt.family);
    const layers = final.rootfs.layers.map((l) => convertLayerDescriptor(layerBlob(l).descriptor, rt.family));
    const manifest = serializeManifest(config.descriptor, layers, { family: rt.family });
    await store.putDocument(config.descriptor, config.bytes, { signal });
    await store.putDocument(manifest.descriptor, manifest.bytes, { signal });

    const localBlobs = [config.descriptor, ...final.rootfs.layers.filter((l) => l.origin === 'built').map((l) => layerBlob(l).descriptor)];
    await Promise.all(earlyUploads);
    const outputs = await writeOutputs(manifest.descriptor, options.outputs ?? [], { content, registries, localBlobs, emit, signal });
    const cacheTo = options.cacheTo;
    if (cacheTo !== undefined) {
      const began = Date.now();
      const entries = await stepCache.export();
      emit({ type: 'cache-exported', time: Date.now(), reference: cacheTo, entries, durationMs: Date.now() - began });
    }
    // Never what this build used (it started using it at `started`); a failure costs disk, not the image.
    await pruneCache({ cacheDir, ...bounds, keepUsedSince: started }).catch((err: unknown) => {
      emit({ type: 'warning', time: Date.now(), message: `the cache directory could not be pruned: ${(err as Error).message}` });
    });
    const size = manifest.descriptor.size + config.descriptor.size + layers.reduce((sum, l) => sum + l.size, 0);
    const durationMs = Date.now() - started;
    emit({ type: 'build-finished', time: Date.now(), digest: manifest.descriptor.digest, durationMs });
    return {
      manifest: manifest.descriptor,
      config: config.descriptor,
      digest: manifest.descriptor.digest,
      size,
      platform: formatPlatform({ os: final.config.os, architecture: final.config.architecture, ...(final.config.variant === undefined ? {} : { variant: final.config.variant }) }),
      steps: results.flatMap((r) => r.steps),
      outputs,
      warnings: plan.warnings,
      durationMs,
    };
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
    if (ownPool) await registries.close().catch(() => undefined);
  }
}

interface Dockerfile {
  readonly text: string | Uint8Array;
  /** The name errors and warnings give. */
  readonly name: string;
  /** The file's path, when it is a file (for `<Dockerfile>.dockerignore`). */
  readonly path: string | undefined;
}

async function readDockerfile(options: BuildOptions, contextDir: string): Promise<Dockerfile> {
  const given = options.dockerfile;
  if (given !== undefined && typeof given !== 'string') return { text: given.text, name: given.name ?? 'Dockerfile', path: undefined };
  const path = resolvePath(contextDir, given ?? BUILD_DEFAULTS.dockerfile);
  let text: Uint8Array;
  try {
    text = await readFile(path);
  } catch (err) {
    throw new BuildOptionsError(`cannot read the Dockerfile ${path}: ${(err as Error).message}`, { cause: err });
  }
  const rel = relative(contextDir, path);
  return { text, name: rel.startsWith('..') ? path : rel, path };
}

/** Reads the config of every base image the plan names (in parallel), for the second plan. */
async function resolveBaseConfigs(plan: BuildPlan, images: ImageResolver, file: string): Promise<Record<string, BaseImageConfig>> {
  const configs: Record<string, BaseImageConfig> = {};
  await Promise.all(
    plan.stages.map(async (stage: PlanStage) => {
      if (stage.base.kind !== 'image') return;
      const base = stage.base;
      let platform: Platform;
      try {
        platform = parsePlatform(stage.platform);
        const image = await images.resolve(base.ref, base.reference, platform);
        const c = image.config.config ?? {};
        configs[base.ref] = {
          ...(c.Env === undefined ? {} : { Env: c.Env }),
          ...(c.WorkingDir === undefined ? {} : { WorkingDir: c.WorkingDir }),
          ...(c.User === undefined ? {} : { User: c.User }),
          ...(c.Shell === undefined ? {} : { Shell: c.Shell }),
          ...(c.OnBuild === undefined || c.OnBuild === null ? {} : { OnBuild: c.OnBuild }),
        };
      } catch (err) {
        if (err instanceof AbortedError) throw err;
        throw new BuildStepError({ file, startLine: stage.startLine, endLine: stage.endLine, stage: stage.name ?? `stage-${stage.index}`, instruction: stage.original }, err);
      }
    }),
  );
  return configs;
}

/** Registry events as build events (and passed on to the caller's own listener). */
function registryListener(emit: (event: BuildEvent) => void, also: ((event: RegistryEvent) => void) | undefined): (event: RegistryEvent) => void {
  return (event) => {
    also?.(event);
    if (event.type === 'blob-progress' && event.direction === 'push') {
      emit({ type: 'push-progress', time: Date.now(), destination: `${event.registry}/${event.repository}`, digest: event.digest, transferred: event.transferred, size: event.size });
    } else if (event.type === 'retry') {
      emit({ type: 'retry', time: Date.now(), registry: event.registry, operation: event.operation, attempt: event.attempt, maxAttempts: event.maxAttempts, delayMs: event.delayMs, reason: event.cause.message });
    }
  };
}

/** The registry cache of `cacheFrom` / `cacheTo`, if any (references checked up front). */
function registryCache(options: BuildOptions, registries: RegistryClientPool): RegistryCache | undefined {
  const from = (options.cacheFrom ?? []).map((ref) => cacheReference(ref, 'cacheFrom'));
  const to = options.cacheTo === undefined ? undefined : cacheReference(options.cacheTo, 'cacheTo');
  if (from.length === 0 && to === undefined) return undefined;
  return new RegistryCache(registries, from, to);
}

function cacheReference(ref: string, option: string): Reference {
  try {
    return parseReference(ref);
  } catch (err) {
    throw new BuildOptionsError(`${option}: ${(err as Error).message}`, { cause: err });
  }
}
