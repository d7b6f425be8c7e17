import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { throwIfAborted } from '../errors.js';
import { applyLayers, extractLayer, type LayerInput } from '../layers/index.js';
import { digestHex, digestOf, type Descriptor, type Digest, type Fetcher } from '../oci/index.js';
import { convertWhiteouts, LayerStackTree, XattrOpaque, type FileTree, type OpaqueIndex, type OverlayXattrNamespace } from './run/index.js';
import { markUsed, pruneUnused } from './unused.js';
import { EMPTY_VIEW, fileTreeView, KnownTree, LayeredView, UNKNOWN_VIEW, type NodeInfo, type PathView } from './view.js';

/**
 * A stage's root filesystem, kept as lazily as the steps allow:
 * - `unknown`: an image base whose layers were not fetched. The stage knows only what its own
 *   layers wrote (a `KnownTree`); steps that need more ask for `materialize`.
 * - `empty`: scratch; everything is known without a file on disk.
 * - `dirs`: unpacked, as overlay-format directories (bottom first), ready for RUN's overlay
 *   and for reading files; layers built since the last unpack are kept as a `KnownTree` on top
 *   and unpacked when someone needs their files.
 *
 * Unpacked layers live in the cache directory and are shared by every stage and every build:
 * a single layer by its diffID (`layers/`), a whole image applied into one directory by its
 * chain ID (`chains/`, used when a stage's own lazily built layers sit on an unpacked base,
 * since those are applied through the base's symlinks as a runtime would).
 */

/** One layer of a stage's image. */
export interface StageLayer {
  readonly diffId: Digest;
  /** `base` for a layer of the base image, `built` for one this build made. */
  readonly origin: 'base' | 'built';
  /**
   * The blob (descriptor as the manifest lists it, media type in the output's family, and where
   * to read it). Absent for a layer of a stage that no image includes: it only ever exists
   * unpacked (see `StageRootfs.addUnpackedLayer`).
   */
  readonly blob?: LayerBlob | undefined;
}

export interface LayerBlob {
  readonly descriptor: Descriptor;
  readonly fetcher: Fetcher;
}

/** The blob of a layer that must have one (layers of an image). */
export function layerBlob(layer: StageLayer): LayerBlob {
  if (layer.blob === undefined) throw new Error(`layer ${layer.diffId} exists only unpacked`);
  return layer.blob;
}

/** An unpacked layer (or chain of layers) in overlay format. */
export interface LayerDir {
  readonly path: string;
  /**
   * Directories marked opaque in it (they hide the layers below): known, or to be read from
   * the overlay xattrs of that namespace (a RUN's upper directory taken as it is).
   */
  readonly opaque: ReadonlySet<string> | { readonly xattr: OverlayXattrNamespace };
}

export interface RootfsCacheEvents {
  /** A base blob was read from outside the build (to unpack it). */
  onFetch?(descriptor: Descriptor): void;
}

/** The OCI chain ID of layers (image-spec config.md): what a stack of diffIDs is known by. */
export function chainId(diffIds: readonly Digest[]): Digest {
  let chain: Digest | undefined;
  for (const diffId of diffIds) chain = chain === undefined ? diffId : digestOf(`${chain} ${diffId}`);
  if (chain === undefined) throw new RangeError('a chain ID needs at least one layer');
  return chain;
}

/**
 * Directories being made, by path, across every build of the process: two builds that need the
 * same base layer download and unpack it once.
 */
const inflight = new Map<string, Promise<LayerDir>>();

/** Unpacked layers, content-addressed in the cache directory and shared across builds. */
export class RootfsCache {

  constructor(
    readonly cacheDir: string,
    readonly events: RootfsCacheEvents = {},
  ) {}

  /** One layer unpacked into its own directory, whiteouts in overlay form. */
  layerDir(layer: StageLayer, signal?: AbortSignal): Promise<LayerDir> {
    const dir = join(this.cacheDir, 'layers', 'sha256', digestHex(layer.diffId));
    return this.#once(dir, async (temp) => {
      await extractLayer(this.#input(layer, signal), temp, { whiteouts: 'keep', signal });
      const converted = await convertWhiteouts(temp, { signal });
      return converted.opaqueDirs;
    });
  }

  /** Layers applied one after the other into one directory (no whiteouts left). */
  chainDir(layers: readonly StageLayer[], signal?: AbortSignal): Promise<LayerDir> {
    const dir = join(this.cacheDir, 'chains', 'sha256', digestHex(chainId(layers.map((l) => l.diffId))));
    return this.#once(dir, async (temp) => {
      await applyLayers(
        temp,
        layers.map((layer) => this.#input(layer, signal)),
        { signal },
      );
      return [];
    });
  }

  /**
   * Takes a directory already in overlay format (a RUN's upper directory, a layer unpacked by the
   * build) as layer `diffId`; it is moved, so it must be on the cache's filesystem. Its opaque
   * directories are listed, or marked by overlay xattrs of a namespace.
   */
  async adoptLayerDir(diffId: Digest, source: string, opaque: readonly string[] | { readonly xattr: OverlayXattrNamespace }): Promise<LayerDir> {
    const dir = join(this.cacheDir, 'layers', 'sha256', digestHex(diffId));
    const existing = await readLayerDir(dir);
    if (existing !== undefined) return existing;
    await mkdir(join(this.cacheDir, 'layers', 'sha256'), { recursive: true });
    await writeFile(`${dir}.json`, JSON.stringify(Array.isArray(opaque) ? { opaque } : { xattr: (opaque as { xattr: OverlayXattrNamespace }).xattr }));
    try {
      await rename(source, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
    }
    return Array.isArray(opaque) ? { path: dir, opaque: new Set(opaque) } : { path: dir, opaque: { xattr: (opaque as { xattr: OverlayXattrNamespace }).xattr } };
  }

  /** Layer `diffId` if it is unpacked in the cache (a cached step's layer that only exists unpacked). */
  existingLayerDir(diffId: Digest): Promise<LayerDir | undefined> {
    return readLayerDir(join(this.cacheDir, 'layers', 'sha256', digestHex(diffId)));
  }

  /**
   * Removes the unpacked layers and chains no build used since `since` (ms since the epoch), and
   * what a process that died left half-made (see unused.ts for how a concurrent user is kept
   * safe). A user that finds one gone unpacks the layer again or, for a layer that only lived
   * unpacked, runs its step again. Returns how many were removed.
   */
  async prune(since: number): Promise<number> {
    let removed = 0;
    for (const kind of ['layers', 'chains']) removed += await pruneUnused(join(this.cacheDir, kind, 'sha256'), '.json', since);
    return removed;
  }

  #input(layer: StageLayer, signal: AbortSignal | undefined): LayerInput {
    const blob = layerBlob(layer);
    return {
      mediaType: blob.descriptor.mediaType,
      content: async () => {
        if (layer.origin === 'base') this.events.onFetch?.(blob.descriptor);
        return blob.fetcher.fetch(blob.descriptor, signal === undefined ? {} : { signal });
      },
    };
  }

  /**
   * Makes `dir` once: reused when it exists (from an earlier build too), otherwise built by
   * `make` in a temporary directory beside it and renamed into place, so a crash or a concurrent
   * builder never leaves or sees a half-unpacked directory.
   */
  #once(dir: string, make: (temp: string) => Promise<readonly string[]>): Promise<LayerDir> {
    let pending = inflight.get(dir);
    if (pending === undefined) {
      pending = (async () => {
        const existing = await readLayerDir(dir);
        if (existing !== undefined) return existing;
        const parent = join(dir, '..');
        await mkdir(parent, { recursive: true });
        const temp = join(parent, `.tmp-${randomBytes(8).toString('hex')}`);
        try {
          await mkdir(temp, { mode: 0o755 });
          const opaque = await make(temp);
          await chmod(temp, 0o755);
          await writeFile(`${dir}.json`, JSON.stringify({ opaque }));
          try {
            await rename(temp, dir);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            if (code !== 'EEXIST' && code !== 'ENOTEMPTY') throw err;
            await rm(temp, { recursive: true, force: true });
          }
          return { path: dir, opaque: new Set(opaque) };
        } catch (err) {
          await rm(temp, { recursive: true, force: true });
          throw err;
        }
      })();
      inflight.set(dir, pending);
      void pending.then(
        () => inflight.delete(dir),
        () => inflight.delete(dir),
      );
    }
    return pending;
  }
}

async function readLayerDir(dir: string): Promise<LayerDir | undefined> {
  try {
    // Marked used (its sidecar is the mark) before it is looked at: see unused.ts.
    await markUsed(`${dir}.json`);
    if (!(await stat(dir)).isDirectory()) return undefined;
    const sidecar = JSON.parse(await readFile(`${dir}.json`, 'utf8')) as { opaque?: unknown; xattr?: unknown };
    if (sidecar.xattr === 'user' || sidecar.xattr === 'trusted') return { path: dir, opaque: { xattr: sidecar.xattr } };
    const opaque = Array.isArray(sidecar.opaque) ? sidecar.opaque.filter((p): p is string => typeof p === 'string') : [];
    return { path: dir, opaque: new Set(opaque) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

type Lower = { readonly kind: 'empty' } | { readonly kind: 'unknown' } | { readonly kind: 'dirs'; readonly dirs: readonly LayerDir[]; readonly covered: number };

/** The layers of a stage and what is known of the files they make. See the module comment. */
export class StageRootfs {
  #layers: StageLayer[];
  #lower: Lower;
  #pending: KnownTree;
  /**
   * Why the files must be unpacked before a new step is planned, if they must: a cached step was
   * taken over from a build that knew them at that point (so the next step is planned, and
   * writes its layer, as that build did), or a cached RUN layer's changes are not in `#pending`.
   */
  #owed: string | undefined;
  /** A layer whose paths are not in `#pending` sits above the unpacked ones: `view` cannot answer. */
  #stale = false;
  /**
   * Layers written against an unknown base (planned lazily): they rely on being applied through
   * the base's symlinks. Without any, the layers can be unpacked one directory each, reusing the
   * directories earlier builds left in the cache.
   */
  #lazyLayers = 0;

  private constructor(layers: StageLayer[], lower: Lower, pending: KnownTree) {
    this.#layers = layers;
    this.#lower = lower;
    this.#pending = pending;
  }

  /** A scratch root: empty and fully known. */
  static empty(): StageRootfs {
    return new StageRootfs([], { kind: 'empty' }, new KnownTree());
  }

  /** An image's root whose files are not known until `materialize`. */
  static ofImage(layers: readonly StageLayer[]): StageRootfs {
    return new StageRootfs([...layers], layers.length === 0 ? { kind: 'empty' } : { kind: 'unknown' }, new KnownTree());
  }

  /** An independent copy (a stage based on another stage starts from this). */
  fork(): StageRootfs {
    const copy = new StageRootfs([...this.#layers], this.#lower, this.#pending.clone());
    copy.#owed = this.#owed;
    copy.#stale = this.#stale;
    copy.#lazyLayers = this.#lazyLayers;
    return copy;
  }

  /** Why the files must be unpacked before the next step is planned (see `addCachedLayer`). */
  get owed(): string | undefined {
    return this.#owed;
  }

  /**
   * Adds a layer taken from the build cache, without unpacking it: with the paths it wrote
   * (COPY, ADD, WORKDIR), or without (RUN: then the files must be unpacked before anything reads
   * them). `known`: the build that made the entry knew the whole root after this step.
   */
  addCachedLayer(layer: StageLayer, nodes: Iterable<readonly [string, NodeInfo]> | undefined, known: boolean): void {
    this.#layers.push(layer);
    if (nodes === undefined) {
      this.#stale = true;
      this.#owed = 'a cached RUN layer is below';
    } else {
      for (const [path, node] of nodes) this.#pending.set(path, node);
      if (known && !this.known) this.#owed ??= 'the cached steps were built with the base image unpacked';
      if (!known && !this.known) this.#lazyLayers++;
    }
  }

  get layers(): readonly StageLayer[] {
    return this.#layers;
  }

  /** Whether every path's state is known without fetching anything. */
  get known(): boolean {
    return this.#lower.kind !== 'unknown';
  }

  /** The paths as far as they are known (see view.ts). */
  view(): PathView {
    if (this.#stale) throw new Error('the root filesystem holds a cached layer that is not unpacked yet');
    const lower = this.#lower;
    const lowerView = lower.kind === 'empty' ? EMPTY_VIEW : lower.kind === 'unknown' ? UNKNOWN_VIEW : fileTreeView(this.#stackTree(lower.dirs));
    return new LayeredView([this.#pending], lowerView);
  }

  /** Adds a layer this build made, with the entries it holds (and directories it relied on). */
  addLayer(layer: StageLayer, nodes: Iterable<readonly [string, NodeInfo]>): void {
    if (!this.known) this.#lazyLayers++;
    this.#layers.push(layer);
    for (const [path, node] of nodes) this.#pending.set(path, node);
  }

  /** Adds a layer that is already unpacked (a RUN's changes); the stage must be materialized. */
  addUnpackedLayer(layer: StageLayer, dir: LayerDir): void {
    const lower = this.#lower;
    if (lower.kind !== 'dirs' || lower.covered !== this.#layers.length) throw new Error('addUnpackedLayer needs a materialized root');
    this.#layers.push(layer);
    this.#lower = { kind: 'dirs', dirs: [...lower.dirs, dir], covered: this.#layers.length };
  }

  /** Whether `materialize` has work to do. */
  get materialized(): boolean {
    return this.#lower.kind === 'dirs' && this.#lower.covered === this.#layers.length;
  }

  /**
   * Unpacks every layer (those not unpacked yet) so the root exists as directories. Returns how
   * many layers were unpacked or reused from the cache.
   */
  async materialize(cache: RootfsCache, signal?: AbortSignal): Promise<number> {
    throwIfAborted(signal);
    const lower = this.#lower;
    if (lower.kind === 'dirs' && lower.covered === this.#layers.length) {
      this.#owed = undefined;
      return 0;
    }
    if (lower.kind === 'unknown' && this.#lazyLayers > 0) {
      // The stage's own layers were written against an unknown base and rely on being applied
      // through it (an existing symlink is followed): apply the whole chain into one directory.
      const chain = await cache.chainDir(this.#layers, signal);
      this.#lower = { kind: 'dirs', dirs: [chain], covered: this.#layers.length };
      this.#pending = new KnownTree();
      this.#owed = undefined;
      this.#stale = false;
      this.#lazyLayers = 0;
      return this.#layers.length;
    }
    const covered = lower.kind === 'dirs' ? lower.covered : 0;
    const dirs = lower.kind === 'dirs' ? [...lower.dirs] : [];
    for (const layer of this.#layers.slice(covered)) dirs.push(await cache.layerDir(layer, signal));
    this.#lower = { kind: 'dirs', dirs, covered: this.#layers.length };
    this.#pending = new KnownTree();
    this.#owed = undefined;
    this.#stale = false;
    this.#lazyLayers = 0;
    return this.#layers.length - covered;
  }

  /** The unpacked directories, bottom first (after `materialize`). */
  lowerDirs(): readonly LayerDir[] {
    const lower = this.#lower;
    if (lower.kind !== 'dirs' || lower.covered !== this.#layers.length) {
      if (lower.kind === 'empty' && this.#layers.length === 0) return [];
      throw new Error('the root filesystem is not materialized');
    }
    return lower.dirs;
  }

  /** The merged files (after `materialize`). */
  fileTree(): FileTree {
    return this.#stackTree(this.lowerDirs());
  }

  #stackTree(dirs: readonly LayerDir[]): LayerStackTree {
    return new LayerStackTree(
      dirs.map((d) => d.path),
      opaqueIndex(dirs),
    );
  }
}

/** Opaque directories of unpacked layers: from what is known, else from their overlay xattrs. */
function opaqueIndex(dirs: readonly LayerDir[]): OpaqueIndex {
  const readers = new Map<OverlayXattrNamespace, XattrOpaque>();
  const reader = (namespace: OverlayXattrNamespace): XattrOpaque => {
    let found = readers.get(namespace);
    if (found === undefined) {
      found = new XattrOpaque(
        dirs.map((d) => d.path),
        namespace,
      );
      readers.set(namespace, found);
    }
    return found;
  };
  return {
    async opaqueIn(dir: string, layers: readonly number[]): Promise<ReadonlySet<number>> {
      const opaque = new Set<number>();
      const byNamespace = new Map<OverlayXattrNamespace, number[]>();
      for (const layer of layers) {
        const marks = dirs[layer]?.opaque;
        if (marks === undefined) continue;
        if (marks instanceof Set) {
          if (marks.has(dir)) opaque.add(layer);
        } else {
          const { xattr } = marks as { readonly xattr: OverlayXattrNamespace };
          byNamespace.set(xattr, [...(byNamespace.get(xattr) ?? []), layer]);
        }
      }
      for (const [namespace, list] of byNamespace) for (const layer of await reader(namespace).opaqueIn(dir, list)) opaque.add(layer);
      return opaque;
    },
  };
}
