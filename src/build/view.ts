import type { BigIntStats } from 'node:fs';
import type { LayerEntryType } from '../layers/index.js';
import type { FileTree } from './run/index.js';
import { CopyConflictError } from './errors.js';
import { pathComponents } from './paths.js';

/**
 * What the engine knows about the paths of a stage's root filesystem. A stage whose base image
 * layers were not fetched knows only what its own layers wrote: anything else is `unknown`, and a
 * step that must know (a single-file COPY whose destination may be a directory) asks for the
 * layers (see rootfs.ts). Scratch-based stages and unpacked ones know everything.
 */

/** The metadata of a path, as far as it is known. */
export interface NodeInfo {
  readonly type: LayerEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly linkname?: string | undefined;
  /**
   * A directory known to exist (a step relied on it) whose metadata is the base image's, not
   * known here: a lazily built layer leaves such a directory out and the base's stays as it is.
   */
  readonly implicit?: boolean | undefined;
}

export type Probe = { readonly state: 'absent' } | { readonly state: 'unknown' } | { readonly state: 'present'; readonly node: NodeInfo };

export const ABSENT: Probe = Object.freeze({ state: 'absent' });
export const UNKNOWN: Probe = Object.freeze({ state: 'unknown' });

/** Looks one path up without following a symlink at it (`''` is the root, always a directory). */
export interface PathView {
  probe(path: string): Promise<Probe>;
}

/** Nothing exists but the root (a scratch stage before its first layer). */
export const EMPTY_VIEW: PathView = {
  probe: async (path) => (path === '' ? { state: 'present', node: ROOT_NODE } : ABSENT),
};

/** Everything but the root is unknown (an image whose layers were not fetched). */
export const UNKNOWN_VIEW: PathView = {
  probe: async (path) => (path === '' ? { state: 'present', node: { ...ROOT_NODE, implicit: true } } : UNKNOWN),
};

const ROOT_NODE: NodeInfo = { type: 'directory', mode: 0o755, uid: 0, gid: 0 };

/** The type of a stat, as a layer entry type (a file with several links is a file here). */
export function statType(st: BigIntStats): LayerEntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isFIFO()) return 'fifo';
  return undefined;
}

/** A `FileTree` (unpacked layers) as a view: everything is known. */
export function fileTreeView(tree: FileTree): PathView {
  return {
    async probe(path) {
      const st = await tree.lstat(path);
      if (st === undefined) return ABSENT;
      const type = statType(st);
      if (type === undefined) return ABSENT;
      const node: NodeInfo = { type, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid) };
      return { state: 'present', node: type === 'symlink' ? { ...node, linkname: await tree.readlink(path) } : node };
    },
  };
}

/**
 * The paths a set of layers wrote, merged (a later write replaces an earlier one; a non-directory
 * hides what was below it). Used for the layers a stage built since its files were last
 * unpacked, and for the entries a step is planning.
 */
export class KnownTree {
  readonly #nodes: Map<string, NodeInfo>;

  constructor(nodes?: ReadonlyMap<string, NodeInfo>) {
    this.#nodes = new Map(nodes);
  }

  clone(): KnownTree {
    return new KnownTree(this.#nodes);
  }

  set(path: string, node: NodeInfo): void {
    const previous = this.#nodes.get(path);
    if (previous?.type === 'directory' && node.type !== 'directory') {
      const prefix = `${path}/`;
      for (const key of [...this.#nodes.keys()]) if (key.startsWith(prefix)) this.#nodes.delete(key);
    }
    // A directory met again keeps knowing its metadata if only its existence is re-asserted.
    if (node.implicit === true && previous?.type === 'directory' && previous.implicit !== true) return;
    this.#nodes.set(path, node);
  }

  /** Everything the tree holds (insertion order). */
  entries(): IterableIterator<[string, NodeInfo]> {
    return this.#nodes.entries();
  }

  /**
   * `present` for a path written here, `absent` when a non-directory written here hides it, and
   * undefined when this tree does not say (look below).
   */
  probe(path: string): Probe | undefined {
    const node = this.#nodes.get(path);
    if (node !== undefined) return { state: 'present', node };
    for (let slash = path.lastIndexOf('/'); slash > 0; slash = path.lastIndexOf('/', slash - 1)) {
      const ancestor = this.#nodes.get(path.slice(0, slash));
      if (ancestor !== undefined) return ancestor.type === 'directory' ? undefined : ABSENT;
    }
    return undefined;
  }
}

/** Known trees (top first) over a lower view. */
export class LayeredView implements PathView {
  constructor(
    readonly overlays: readonly KnownTree[],
    readonly lower: PathView,
  ) {}

  async probe(path: string): Promise<Probe> {
    for (const tree of this.overlays) {
      const found = tree.probe(path);
      if (found !== undefined) return found;
    }
    return this.lower.probe(path);
  }
}

/** Linux's limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

export interface ResolvedDestination {
  /** Root-relative; components up to the first unknown or missing one are resolved. */
  readonly path: string;
  /** What is at `path` (after following it, with `followLast`). */
  readonly probe: Probe;
}

/**
 * Resolves a destination path inside a root as fsutil's `RootPath` does: symlinks are followed
 * inside the root (`..` stops at the root, absolute targets start there), with `followLast` the
 * last component too. Past an unknown component the rest is taken as written and the result is
 * `unknown`; past a missing one, `absent`. A non-directory used as a directory is an error.
 */
export async function resolveDestination(view: PathView, path: string, followLast: boolean): Promise<ResolvedDestination> {
  const queue = pathComponents(path);
  const current: string[] = [];
  let hops = 0;
  let settled: Probe | undefined; // once unknown or absent, the rest is lexical
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      current.pop();
      continue;
    }
    current.push(part);
    if (settled !== undefined) continue;
    const rel = current.join('/');
    const probe = await view.probe(rel);
    if (probe.state !== 'present') {
      settled = probe;
      continue;
    }
    const node = probe.node;
    if (node.type === 'symlink' && (queue.length > 0 || followLast)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new CopyConflictError(`/${path}`, 'too many levels of symbolic links');
      const target = node.linkname ?? '';
      current.pop();
      if (target.startsWith('/')) current.length = 0;
      queue.unshift(...target.split('/'));
      continue;
    }
    if (queue.length > 0 && node.type !== 'directory') throw new CopyConflictError(`/${rel}`, 'not a directory');
  }
  const resolved = current.join('/');
  return { path: resolved, probe: settled ?? (await view.probe(resolved)) };
}
