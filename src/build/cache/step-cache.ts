import type { BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { Descriptor } from '../../oci/index.js';
import type { RegistryRepository } from '../../registry/index.js';
import type { CacheEntry } from './entry.js';
import { cacheKey, firstDifference, inputDigest, type CacheInput } from './key.js';
import type { LocalCacheStore } from './local.js';
import type { ExportItem, RegistryCache } from './remote.js';
import { StatIndex } from './stat-index.js';

/**
 * The build cache as one build sees it: looks steps up (local store, then the registry caches),
 * explains misses, records what each step made, and at the end exports to the registry cache
 * and saves the stat indexes (the build prunes the cache directory: prune.ts).
 */

/** Whether a step was taken from the cache, and if not, why. */
export type CacheStatus = { readonly hit: true } | { readonly hit: false; readonly reason: string };

/** Where a step is in the Dockerfile, to find the inputs of its last run (miss reasons). */
export interface StepPosition {
  readonly stage: number;
  readonly stageName: string;
  readonly step: number;
}

export interface StepCacheOptions {
  readonly local: LocalCacheStore;
  readonly remote?: RegistryCache | undefined;
  /** `--no-cache`: every step runs (entries are still written). */
  readonly noCache: boolean;
  /** `--no-cache-filter`: stages (by name, or index as a string) whose steps all run. */
  readonly noCacheStages: ReadonlySet<string>;
  /** What identifies this build's steps across builds: its context directory and Dockerfile. */
  readonly scope: string;
  readonly signal: AbortSignal;
  /** Told when a registry cache cannot be read (the step then misses; the build goes on). */
  readonly warn?: ((message: string) => void) | undefined;
}

/** The outcome of a lookup. */
export type Lookup =
  | { readonly hit: true; readonly entry: CacheEntry; readonly from: 'local' }
  | { readonly hit: true; readonly entry: CacheEntry; readonly from: 'registry'; readonly repository: RegistryRepository }
  | { readonly hit: false; readonly reason: string };

export class StepCache {
  readonly #options: StepCacheOptions;
  readonly #indexes = new Map<string, Promise<StatIndex>>();
  readonly #exports = new Map<string, ExportItem>();

  constructor(options: StepCacheOptions) {
    this.#options = options;
  }

  get local(): LocalCacheStore {
    return this.#options.local;
  }

  /** The key of a step's inputs. */
  key(inputs: readonly CacheInput[]): string {
    return cacheKey(inputs);
  }

  /** Why every step of this stage misses, when `--no-cache` or `--no-cache-filter` says so. */
  forcedMiss(position: StepPosition): string | undefined {
    if (this.#options.noCache) return '--no-cache';
    if (this.#options.noCacheStages.has(position.stageName) || this.#options.noCacheStages.has(String(position.stage))) {
      return `--no-cache-filter ${position.stageName}`;
    }
    return undefined;
  }

  /** Runs `fn` once per key at a time in this process (see `LocalCacheStore.flight`). */
  flight<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.#options.local.flight(key, fn);
  }

  /** Looks a step up: local store first, then each `--cache-from` repository. */
  async lookup(key: string, position: StepPosition, inputs: readonly CacheInput[]): Promise<Lookup> {
    const forced = this.forcedMiss(position);
    if (forced !== undefined) return { hit: false, reason: forced };
    const local = await this.#options.local.get(key);
    if (local !== undefined) return { hit: true, entry: local, from: 'local' };
    const remote = this.#options.remote;
    if (remote?.importing === true) {
      try {
        const found = await remote.get(key, this.#options.signal);
        if (found !== undefined) return { hit: true, entry: found.entry, from: 'registry', repository: found.repository };
      } catch (err) {
        if (this.#options.signal.aborted) throw err;
        // As BuildKit: a cache that cannot be read costs the time of running the step, not the build.
        this.#options.warn?.(`the registry cache could not be read for step ${position.stageName} ${position.step + 1}: ${(err as Error).message}`);
      }
    }
    return { hit: false, reason: await this.missReason(position, inputs) };
  }

  /** The first input that differs from the last run of the step at this position. */
  async missReason(position: StepPosition, inputs: readonly CacheInput[]): Promise<string> {
    const previous = await this.#options.local.lineage(this.#lineageId(position));
    if (previous === undefined) return 'not in cache';
    return firstDifference(previous, inputs) ?? 'not in cache';
  }

  /** Records a step's result (after a miss) and the inputs it ran with. */
  async record(position: StepPosition, inputs: readonly CacheInput[], entry: CacheEntry, blob?: { readonly descriptor: Descriptor; readonly path: string }): Promise<void> {
    if (blob !== undefined) await this.#options.local.addBlob(blob.descriptor, blob.path);
    await this.#options.local.put(entry);
    await this.#options.local.setLineage(this.#lineageId(position), inputs);
  }

  /** Records that the step at this position last ran with these inputs (after a hit). */
  async used(position: StepPosition, inputs: readonly CacheInput[]): Promise<void> {
    await this.#options.local.setLineage(this.#lineageId(position), inputs);
  }

  /** Queues an entry for `--cache-to` (exported when the build succeeded). */
  exportLater(entry: CacheEntry, blobs: ExportItem['blobs']): void {
    if (this.#options.remote?.exportTarget !== undefined) this.#exports.set(entry.key, { entry, blobs });
  }

  /** The hasher of context files, through the stat index of their root. */
  hashFile = async (root: string, hostPath: string, st: BigIntStats): Promise<string> => {
    let index = this.#indexes.get(root);
    if (index === undefined) {
      index = StatIndex.open(join(this.#options.local.dir, 'stat'), root);
      this.#indexes.set(root, index);
    }
    return (await index).sha256(hostPath, st);
  };

  /** Saves the stat indexes (also after a failed build: the hashes are still right). */
  async saveIndexes(): Promise<void> {
    for (const index of this.#indexes.values()) await (await index).save();
  }

  /** Pushes the queued entries to the `--cache-to` repository; returns how many. */
  async export(): Promise<number> {
    const remote = this.#options.remote;
    if (remote === undefined || this.#exports.size === 0) return 0;
    return remote.export([...this.#exports.values()], this.#options.signal);
  }

  #lineageId(position: StepPosition): string {
    return inputDigest(`${this.#options.scope}\0${position.stageName}\0${position.step}`);
  }
}
