import type { BigIntStats } from 'node:fs';
import { DirectoryTree, type FileTree } from './run/index.js';
import { ContextEscapeError, CopySourceNotFoundError } from './errors.js';
import { pathComponents } from './paths.js';

/**
 * A tree COPY and ADD read from: the build context, another stage's root filesystem, an image's,
 * an unpacked archive, a git checkout. Paths are root-relative (`''` is the root) and already
 * resolved when passed to the `FileTree` methods; `resolveSourcePath` does the resolving.
 */
export interface SourceTree extends FileTree {
  /** For messages: "the build context", "stage builder", "image alpine:3.20". */
  readonly description: string;
  /**
   * What a symlink pointing above the root means: `clamp` (the root's `..` is the root, and an
   * absolute target starts at the root: BuildKit's rule inside images), or `error` (the build
   * context: a source outside it is refused with `ContextEscapeError`).
   */
  readonly escape: 'clamp' | 'error';
  /**
   * Whether the owners found are replaced by 0:0: BuildKit's context transfer resets them (files of
   * a build context belong to whoever checked them out), everything else keeps its owners.
   */
  readonly resetOwner: boolean;
}

/** A plain directory as a source (an unpacked archive, a git checkout, a named local context). */
export function directorySourceTree(root: string, description: string, options: { resetOwner?: boolean; escape?: 'clamp' | 'error' } = {}): SourceTree {
  const tree = new DirectoryTree(root);
  return {
    description,
    escape: options.escape ?? 'clamp',
    resetOwner: options.resetOwner ?? false,
    lstat: (p) => tree.lstat(p),
    readlink: (p) => tree.readlink(p),
    readdir: (p) => tree.readdir(p),
    hostPath: (p) => tree.hostPath(p),
  };
}

/** A source tree over any `FileTree` (a stage's merged layers). */
export function fileSourceTree(tree: FileTree, description: string): SourceTree {
  return {
    description,
    escape: 'clamp',
    resetOwner: false,
    lstat: (p) => tree.lstat(p),
    readlink: (p) => tree.readlink(p),
    readdir: (p) => tree.readdir(p),
    hostPath: (p) => tree.hostPath(p),
  };
}

/** Linux's limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

export interface ResolvedSource {
  /** Root-relative; every component but possibly the last is a real directory. */
  readonly path: string;
  readonly stat: BigIntStats;
}

/**
 * Resolves `path` (root-relative, clean) in a source tree the way fsutil's `RootPath` does:
 * symlinks are followed inside the root; with `followLast` the final component too (COPY follows
 * a source that is a symlink). On a tree with `escape: 'error'` a `..` or a symlink that leaves
 * the root is refused with `ContextEscapeError` instead of being clamped. A missing path is
 * `CopySourceNotFoundError` naming `original`, the source as the Dockerfile wrote it.
 */
export async function resolveSourcePath(tree: SourceTree, path: string, followLast: boolean, original: string): Promise<ResolvedSource> {
  const queue = pathComponents(path);
  const current: string[] = [];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '.' || part === '') continue;
    if (part === '..') {
      if (current.length === 0) {
        if (tree.escape === 'error') throw new ContextEscapeError(original, 'a symlink on the way climbs above the root of the context');
        continue;
      }
      current.pop();
      continue;
    }
    current.push(part);
    const rel = current.join('/');
    const st = await tree.lstat(rel);
    if (st === undefined) throw new CopySourceNotFoundError(original, tree.description);
    if (st.isSymbolicLink() && (queue.length > 0 || followLast)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new CopySourceNotFoundError(original, `${tree.description} (too many levels of symbolic links)`);
      const target = await tree.readlink(rel);
      current.pop();
      if (target.startsWith('/')) {
        if (tree.escape === 'error') throw new ContextEscapeError(original, `${rel} is a symlink to the absolute path ${target}`);
        current.length = 0;
      }
      queue.unshift(...target.split('/'));
      continue;
    }
    if (queue.length > 0 && !st.isDirectory()) throw new CopySourceNotFoundError(original, `${tree.description} (/${rel} is not a directory)`);
  }
  const resolved = current.join('/');
  const st = await tree.lstat(resolved);
  if (st === undefined) throw new CopySourceNotFoundError(original, tree.description);
  return { path: resolved, stat: st };
}

/** The sorted names of a source directory (Go's `ioutil.ReadDir` order: bytes of the name). */
export async function sortedChildren(tree: SourceTree, dir: string): Promise<string[]> {
  const names = await tree.readdir(dir);
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}
