// The public surface of src/build: the build engine (`build` → a job with typed events and a
// result) and, re-exported, the RUN executors and snapshots of src/build/run.
export { build, buildxMetadata, type BuildJob, type BuildxMetadata } from './job.js';
export type { BuildResult } from './builder.js';
export { BUILD_DEFAULTS, defaultCacheDir, type BuildOptions, type BuildOutput, type BuildSecret } from './options.js';
export type { BuildEvent, BuildEventType, LayerRecord, StepIdentity } from './events.js';
export type { StepRecord } from './runtime.js';
export type { CacheStatus, PruneResult } from './cache/index.js';
export { pruneCache, type PruneCacheOptions, type PruneCacheResult } from './prune.js';
export type { OutputRecord } from './output.js';
export {
  BuildStepError,
  isBuildStepError,
  BuildOptionsError,
  CopySourceNotFoundError,
  ContextEscapeError,
  CopyConflictError,
  CopyDestinationError,
  OwnerSpecError,
  RemoteSourceError,
  ChecksumMismatchError,
  GitSourceError,
  RunFailedError,
  RunMountError,
  OutputError,
  formatLocation,
  type StepLocation,
  type StepReference,
} from './errors.js';
export { parseNamedContext, type NamedContext } from './images.js';
export * from './run/index.js';
