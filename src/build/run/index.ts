// The public surface of src/build/run: RUN executors, snapshots, and their helpers. The engine
// (src/build/index.ts) re-exports what it needs from here.
export {
  RunUnavailableError,
  RunSetupError,
  SnapshotError,
  RootPathError,
  UserNotFoundError,
  HostToolError,
  RunEntitlementError,
} from './errors.js';
export type {
  Rootfs,
  DirectoryRootfs,
  OverlayRootfs,
  RunSpec,
  RunUser,
  RunMount,
  BindMount,
  CacheMount,
  TmpfsMount,
  SecretMount,
  SshMount,
  ExtraHost,
  NetworkMode,
  OutputStream,
  RunOptions,
  RunResult,
  RunExecutor,
} from './types.js';
export { NamespaceExecutor, DEFAULT_CAPABILITIES, type NamespaceExecutorOptions } from './namespace.js';
export { RuncExecutor, type RuncExecutorOptions } from './runc.js';
export type { Snapshot, Snapshotter, SnapshotMode, SnapshotDiffOptions, PrepareOptions } from './snapshot.js';
export { OverlaySnapshotter, overlayDiffSource, type OverlaySnapshotterOptions } from './overlay.js';
export { CopySnapshotter, type CopySnapshotterOptions } from './copy.js';
export {
  detectExecutors,
  createExecutor,
  createSnapshotter,
  type ExecutorKind,
  type Support,
  type RunSupport,
  type CreateExecutorOptions,
  type CreateSnapshotterOptions,
  type DetectOptions,
} from './detect.js';
export { detectOverlay, type OverlaySupport } from './overlayfs.js';
export { resolveUser } from './user.js';
export { hostCapabilities } from './host.js';
export { DirectoryTree, resolveInRoot, readTreeFile, type FileTree, type ResolvedPath } from './tree.js';
export { LayerStackTree, KnownOpaque, XattrOpaque, isWhiteout, opaqueXattr, type OpaqueIndex, type StackEntry, type OverlayXattrNamespace } from './layerstack.js';
export { writeOverlayMarkers, convertWhiteouts, type OverlayMarkers, type MarkerOptions, type ConvertedWhiteouts } from './markers.js';
export { LineSplitter } from './output.js';
