import type { LayerSource } from '../../layers/index.js';
import type { FileTree } from './tree.js';
import type { Rootfs } from './types.js';

/**
 * Snapshots: a writable root over an image's layer directories, and the changes a command made
 * to it as a layer. Two modes:
 * - `overlay`: the layers are overlayfs lower directories and an empty upper directory takes
 *   every change: the upper directory *is* the diff (its whiteout devices and opaque markers
 *   become OCI whiteouts), so the cost is proportional to what changed.
 * - `copy`, where overlayfs cannot be mounted: the layers are copied into one directory (`cp
 *   -a`, reflinks where the filesystem has them) and the diff is a comparison walk against the
 *   layers (type, mode, owner, size, mtime, and the bytes when those are all equal).
 * Both give the same layer for the same command, up to times.
 *
 * Layer directories are in overlay format (see `convertWhiteouts`), bottom first.
 */

export type SnapshotMode = 'overlay' | 'copy';

export interface SnapshotDiffOptions {
  readonly signal?: AbortSignal | undefined;
}

export interface Snapshot {
  readonly mode: SnapshotMode;
  /** What to give a `RunSpec`. */
  readonly rootfs: Rootfs;
  /** The root as it is now (layers plus changes), for reading: /etc/passwd for `resolveUser`... */
  tree(): FileTree;
  /**
   * The changes made so far, as layer entries (parents before children, whiteouts as
   * `.wh.NAME`, replaced directories with `.wh..wh..opq`). Times and owners are as found:
   * normalise with the layers module (`normalizeEntries`) before writing.
   */
  diff(options?: SnapshotDiffOptions): LayerSource;
  /** Deletes everything the snapshot created. */
  release(): Promise<void>;
}

export interface PrepareOptions {
  readonly signal?: AbortSignal | undefined;
}

export interface Snapshotter {
  readonly mode: SnapshotMode;
  /** A fresh writable root over `lowerDirs` (bottom first). */
  prepare(lowerDirs: readonly string[], options?: PrepareOptions): Promise<Snapshot>;
}
