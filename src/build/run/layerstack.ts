import type { BigIntStats } from 'node:fs';
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { normalizeArchivePath } from '../../layers/index.js';
import { gnuTarHeaders } from './gnutar.js';
import { lstatOrUndefined, type FileTree } from './tree.js';

/**
 * Overlay-format layer directories and their merged view, computed in Node without mounting.
 *
 * Overlay format is the kernel's: a deletion is a character device 0/0 (a whiteout) and a
 * directory that hides everything below it carries the xattr `trusted.overlay.opaque=y`
 * (`user.overlay.opaque` when the overlay is mounted with `userxattr` in a user namespace).
 */

export type OverlayXattrNamespace = 'trusted' | 'user';

/** The xattr that marks an opaque directory for the given namespace. */
export function opaqueXattr(namespace: OverlayXattrNamespace): string {
  return `${namespace}.overlay.opaque`;
}

/** True for an overlay whiteout: a character device with device number 0/0. */
export function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

/** Says which layers mark a directory opaque. Layers are indexes into the stack, bottom = 0. */
export interface OpaqueIndex {
  opaqueIn(dir: string, layers: readonly number[]): Promise<ReadonlySet<number>>;
}

/** Opaque directories known in advance, per layer (as a walk of each layer found them). */
export class KnownOpaque implements OpaqueIndex {
  constructor(private readonly sets: readonly ReadonlySet<string>[]) {}

  async opaqueIn(dir: string, layers: readonly number[]): Promise<ReadonlySet<number>> {
    return new Set(layers.filter((layer) => this.sets[layer]?.has(dir) === true));
  }
}

/**
 * Opaque markers read on demand from the layers' xattrs (through GNU tar: Node cannot read
 * xattrs), one tar run per directory lookup whatever the number of layers, cached.
 */
export class XattrOpaque implements OpaqueIndex {
  readonly #cache = new Map<string, boolean>();

  constructor(
    private readonly layerDirs: readonly string[],
    private readonly namespace: OverlayXattrNamespace,
  ) {}

  async opaqueIn(dir: string, layers: readonly number[]): Promise<ReadonlySet<number>> {
    const unknown = layers.filter((layer) => !this.#cache.has(`${layer}\0${dir}`));
    if (unknown.length > 0) {
      const attr = opaqueXattr(this.namespace);
      const hostPaths = unknown.map((layer) => join(this.layerDirs[layer]!, dir));
      const headers = await gnuTarHeaders({ directory: '/', paths: hostPaths.map((p) => p.slice(1)), xattrs: [attr] });
      const opaque = new Set(headers.filter((h) => isOpaqueValue(h.xattrs[attr])).map((h) => normalizeArchivePath(h.name)));
      for (const [i, layer] of unknown.entries()) this.#cache.set(`${layer}\0${dir}`, opaque.has(normalizeArchivePath(hostPaths[i]!)));
    }
    return new Set(layers.filter((layer) => this.#cache.get(`${layer}\0${dir}`) === true));
  }
}

/** `y` is opaque; newer kernels also write `x` (a directory with xwhiteouts), which is not. */
export function isOpaqueValue(value: Uint8Array | undefined): boolean {
  return value !== undefined && value.byteLength >= 1 && value[0] === 0x79;
}

/** An entry of the merged view and the layer it comes from. */
export interface StackEntry {
  readonly layer: number;
  readonly stat: BigIntStats;
}

/**
 * The merged view of a stack of overlay-format layer directories, as overlayfs would show it:
 * the topmost entry wins, whiteouts delete, opaque directories hide the layers below them, and a
 * non-directory hides everything below it. Read-only; directory resolutions are cached, so the
 * layers must not change while the view is used.
 */
export class LayerStackTree implements FileTree {
  /** Directory path → layers (top first) in which it is a visible directory. */
  readonly #dirs = new Map<string, Promise<number[] | undefined>>();

  /** `layers`: bottom first, as in an image manifest. */
  constructor(
    readonly layers: readonly string[],
    private readonly opaque: OpaqueIndex,
  ) {}

  #host(layer: number, path: string): string {
    return path === '' ? this.layers[layer]! : join(this.layers[layer]!, path);
  }

  /** The layers (top first) contributing to directory `dir`, or undefined if it is not one. */
  directoryLayers(dir: string): Promise<number[] | undefined> {
    let found = this.#dirs.get(dir);
    if (found === undefined) {
      found = this.#computeDirectoryLayers(dir);
      this.#dirs.set(dir, found);
    }
    return found;
  }

  async #computeDirectoryLayers(dir: string): Promise<number[] | undefined> {
    let candidates: number[];
    if (dir === '') {
      candidates = this.layers.map((_, i) => this.layers.length - 1 - i);
    } else {
      const slash = dir.lastIndexOf('/');
      const parent = await this.directoryLayers(slash < 0 ? '' : dir.slice(0, slash));
      if (parent === undefined) return undefined;
      candidates = parent;
    }
    const stats = await Promise.all(candidates.map((layer) => lstatOrUndefined(this.#host(layer, dir))));
    const dirs: number[] = [];
    for (const [i, layer] of candidates.entries()) {
      const st = stats[i];
      if (st === undefined) continue;
      if (!st.isDirectory()) break; // a whiteout or a non-directory hides what is below
      dirs.push(layer);
    }
    if (dirs.length === 0) return undefined;
    // Only a directory with another directory below it can hide something by being opaque.
    const opaque = dirs.length > 1 ? await this.opaque.opaqueIn(dir, dirs.slice(0, -1)) : new Set<number>();
    const cut = dirs.findIndex((layer) => opaque.has(layer));
    return cut < 0 ? dirs : dirs.slice(0, cut + 1);
  }

  /** The entry at `path` and its layer, or undefined when absent or deleted. */
  async lookup(path: string): Promise<StackEntry | undefined> {
    if (path === '') {
      const top = this.layers.length - 1;
      const stat = top < 0 ? undefined : await lstatOrUndefined(this.layers[top]!);
      return stat === undefined ? undefined : { layer: top, stat };
    }
    const slash = path.lastIndexOf('/');
    const parent = await this.directoryLayers(slash < 0 ? '' : path.slice(0, slash));
    if (parent === undefined) return undefined;
    for (const layer of parent) {
      const stat = await lstatOrUndefined(this.#host(layer, path));
      if (stat === undefined) continue;
      return isWhiteout(stat) ? undefined : { layer, stat };
    }
    return undefined;
  }

  /** The merged entries of a directory, by name (unsorted). */
  async entries(dir: string): Promise<Map<string, StackEntry>> {
    const layers = await this.directoryLayers(dir);
    const result = new Map<string, StackEntry>();
    if (layers === undefined) return result;
    const hidden = new Set<string>();
    for (const layer of layers) {
      const names = await readdir(this.#host(layer, dir));
      const stats = await Promise.all(names.map((name) => lstatOrUndefined(this.#host(layer, dir === '' ? name : `${dir}/${name}`))));
      for (const [i, name] of names.entries()) {
        const stat = stats[i];
        if (stat === undefined || result.has(name) || hidden.has(name)) continue;
        if (isWhiteout(stat)) hidden.add(name);
        else result.set(name, { layer, stat });
      }
    }
    return result;
  }

  async lstat(path: string): Promise<BigIntStats | undefined> {
    return (await this.lookup(path))?.stat;
  }

  async readlink(path: string): Promise<string> {
    const entry = await this.lookup(path);
    if (entry === undefined) throw Object.assign(new Error(`ENOENT: no such file, readlink '${path}'`), { code: 'ENOENT' });
    return readlink(this.#host(entry.layer, path));
  }

  async readdir(path: string): Promise<string[]> {
    return [...(await this.entries(path)).keys()];
  }

  async hostPath(path: string): Promise<string | undefined> {
    const entry = await this.lookup(path);
    return entry === undefined ? undefined : this.#host(entry.layer, path);
  }
}
