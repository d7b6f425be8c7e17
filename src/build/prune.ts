import { stat } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { LocalCacheStore, type PruneResult } from './cache/index.js';
import { BuildOptionsError } from './errors.js';
import { BUILD_DEFAULTS, defaultCacheDir } from './options.js';
import { RootfsCache } from './rootfs.js';
import { pruneCacheMounts } from './run-step.js';

/**
 * Pruning a cache directory on demand (`stevedore prune`), by the rules every build applies to it
 * when it ends: step entries and layer blobs down to a size, least recently used first; unpacked
 * layers and RUN cache mounts unused for a while. What a running build uses stays usable: its
 * blobs are hard-linked into its own store, and an unpacked directory it is about to use is
 * put back (see unused.ts).
 */

export interface PruneCacheOptions {
  /** Default: `defaultCacheDir()`. */
  readonly cacheDir?: string | undefined;
  /** Bound of the step entries and layer blobs, in bytes. Default `BUILD_DEFAULTS.cacheMaxBytes`; 0 removes them all. */
  readonly cacheMaxBytes?: number | undefined;
  /** Unpacked layers and RUN cache mounts unused for longer go. Default `BUILD_DEFAULTS.unusedMaxAgeSeconds`; 0 removes them all. */
  readonly unusedMaxAgeSeconds?: number | undefined;
  /** Nothing used at or after this time (ms since the epoch) is removed: a build passes its start. Default: now. */
  readonly keepUsedSince?: number | undefined;
}

export interface PruneCacheResult {
  readonly cacheDir: string;
  /** Step entries and layer blobs; undefined when another process was pruning them (left to it). */
  readonly steps: PruneResult | undefined;
  /** Unpacked layers and chains removed. */
  readonly unpacked: number;
  /** RUN cache mounts removed. */
  readonly cacheMounts: number;
}

/** The cache directory's bounds as given, defaults filled in and checked (a build checks them before it starts). */
export function cacheBounds(options: Pick<PruneCacheOptions, 'cacheMaxBytes' | 'unusedMaxAgeSeconds'>): { readonly cacheMaxBytes: number; readonly unusedMaxAgeSeconds: number } {
  const cacheMaxBytes = options.cacheMaxBytes ?? BUILD_DEFAULTS.cacheMaxBytes;
  if (!Number.isSafeInteger(cacheMaxBytes) || cacheMaxBytes < 0) throw new BuildOptionsError(`cacheMaxBytes must be a whole number of bytes, got ${cacheMaxBytes}`);
  const unusedMaxAgeSeconds = options.unusedMaxAgeSeconds ?? BUILD_DEFAULTS.unusedMaxAgeSeconds;
  if (!Number.isFinite(unusedMaxAgeSeconds) || unusedMaxAgeSeconds < 0) throw new BuildOptionsError(`unusedMaxAgeSeconds must be a number of seconds, got ${unusedMaxAgeSeconds}`);
  return { cacheMaxBytes, unusedMaxAgeSeconds };
}

export async function pruneCache(options: PruneCacheOptions = {}): Promise<PruneCacheResult> {
  const cacheDir = resolvePath(options.cacheDir ?? defaultCacheDir());
  const { cacheMaxBytes: maxBytes, unusedMaxAgeSeconds: maxAge } = cacheBounds(options);
  // A cache directory that does not exist has nothing to prune, and is not made by pruning it.
  if (!(await stat(cacheDir).then((st) => st.isDirectory(), () => false))) {
    return { cacheDir, steps: { removedEntries: 0, removedBlobs: 0, freedBytes: 0, keptBytes: 0 }, unpacked: 0, cacheMounts: 0 };
  }
  const keep = options.keepUsedSince ?? Date.now();
  const since = Math.min(keep, Date.now() - maxAge * 1000);
  const [steps, unpacked, cacheMounts] = await Promise.all([
    LocalCacheStore.of(cacheDir).prune(maxBytes, keep),
    new RootfsCache(cacheDir).prune(since),
    pruneCacheMounts(cacheDir, since),
  ]);
  return { cacheDir, steps, unpacked, cacheMounts };
}
