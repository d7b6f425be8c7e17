import type { Transform } from 'node:stream';
import type { BuildPlan } from '../dockerfile/index.js';
import type { Compression, Descriptor, HashedBytes, ImageConfig, Platform } from '../oci/index.js';
import type { RunExecutor, Snapshotter } from './run/index.js';
import type { CacheStatus, StepCache } from './cache/index.js';
import type { BuildContextTree } from './context.js';
import type { BuildEvent, LayerRecord, StepIdentity } from './events.js';
import type { ImageResolver } from './images.js';
import type { BuildSecret } from './options.js';
import type { RootfsCache, StageRootfs } from './rootfs.js';
import type { BuildContentSource, LocalBlobStore } from './store.js';

/**
 * What every stage of one build shares: the plan, the resolved options, the stores, and a way
 * to wait for another stage. Built by builder.ts, read by the step implementations.
 */
export interface BuildRuntime {
  readonly plan: BuildPlan;
  readonly file: string | undefined;
  readonly context: BuildContextTree;
  readonly store: LocalBlobStore;
  readonly content: BuildContentSource;
  readonly cache: RootfsCache;
  /** The step cache: lookups, entries, miss reasons (see cache/). */
  readonly stepCache: StepCache;
  readonly images: ImageResolver;
  /** This build's private temporary directory (removed at the end). */
  readonly workDir: string;
  readonly cacheDir: string;
  readonly epoch: number;
  /** RFC 3339 form of `epoch`: the `created` of the config and of new history entries. */
  readonly created: string;
  readonly timestamps: 'clamp' | 'keep';
  readonly compression: Compression;
  readonly compressionLevel: number | undefined;
  /**
   * Whether a stage's layers end up in the image (the target and the stages it is built FROM).
   * Layers of other stages are only read back by this build (COPY --from, RUN mounts): they are
   * stored uncompressed, which costs no CPU.
   */
  isOutputStage(index: number): boolean;
  readonly family: 'oci' | 'docker';
  readonly lazy: boolean;
  readonly secrets: Readonly<Record<string, BuildSecret>>;
  readonly ssh: Readonly<Record<string, string>>;
  /** Whether `RUN --security=insecure` is granted (`BuildOptions.allow`). */
  readonly allowInsecure: boolean;
  readonly signal: AbortSignal;
  emit(event: BuildEvent): void;
  /**
   * Uploads an output layer to the first registry output while the layer is being compressed
   * (the push then finds it there); undefined without a registry output.
   */
  layerUpload(): LayerUpload | undefined;
  /** The result of another stage (started if needed); rejects if that stage failed. */
  stage(index: number): Promise<StageResult>;
  /** An image's root filesystem (for COPY --from=IMAGE and RUN mounts), unpacked once per build. */
  imageRootfs(ref: string, reference: string, platform: Platform): Promise<StageRootfs>;
  /** A directory of a named local context (`--build-context NAME=DIR`), if `name` is one. */
  localContext(name: string): string | undefined;
  runExecutor(): Promise<RunExecutor>;
  snapshotter(): Promise<Snapshotter>;
  /** A fresh directory inside `workDir`. */
  tempDir(prefix: string): Promise<string>;
}

/** An upload running beside a layer build: `stream` goes into the layer's pipeline. */
export interface LayerUpload {
  /**
   * A pass-through for every byte of the compressed layer, given the layer build's own hash of
   * those bytes (the upload commits under its digest).
   */
  readonly tap: (blob: HashedBytes) => Transform;
  /** Says what was built (for the `blob` event once the upload is committed). */
  built(descriptor: Descriptor): void;
}

/** A finished stage: its config (not yet finalised) and its root filesystem. */
export interface StageResult {
  readonly index: number;
  readonly name: string;
  readonly platform: Platform;
  readonly config: ImageConfig;
  readonly rootfs: StageRootfs;
  readonly steps: readonly StepRecord[];
  /** The cache state after the stage's last layer: what a later stage's cache key depends on. */
  readonly cacheState: string;
}

/** What one step did, for the build result. */
export interface StepRecord extends StepIdentity {
  readonly durationMs: number;
  readonly layer?: LayerRecord;
  /** The history entry says `empty_layer`. */
  readonly emptyLayer: boolean;
  /** Whether the step was taken from the build cache (not run). */
  readonly cached: boolean;
  /** The cache outcome, with the reason of a miss. */
  readonly cache: CacheStatus;
}

