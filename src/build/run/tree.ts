import type { BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { RootPathError } from './errors.js';

/**
 * Read access to a root filesystem by root-relative path (`''` is the root, `etc/passwd` a
 * file): a plain directory, or a stack of overlay-format layer directories seen merged. Paths
 * given to these methods are already resolved (see `resolveInRoot`): no component is a symlink
 * except possibly the last, which is never followed.
 */
export interface FileTree {
  lstat(path: string): Promise<BigIntStats | undefined>;
  readlink(path: string): Promise<string>;
  /** The names in a directory, unsorted. */
  readdir(path: string): Promise<string[]>;
  /** The host path holding `path`'s bytes (for reading content; never for writing). */
  hostPath(path: string): Promise<string | undefined>;
}

/** Linux's limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

export async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    if (errno(err) === 'ENOENT' || errno(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** A plain directory as a root. */
export class DirectoryTree implements FileTree {
  constructor(readonly root: string) {}

  absolute(path: string): string {
    return path === '' ? this.root : join(this.root, path);
  }

  lstat(path: string): Promise<BigIntStats | undefined> {
    return lstatOrUndefined(this.absolute(path));
  }

  readlink(path: string): Promise<string> {
    return readlink(this.absolute(path));
  }

  readdir(path: string): Promise<string[]> {
    return readdir(this.absolute(path));
  }

  async hostPath(path: string): Promise<string | undefined> {
    return (await this.lstat(path)) === undefined ? undefined : this.absolute(path);
  }
}

/** The result of resolving a path inside a root. */
export interface ResolvedPath {
  /** Root-relative, every existing component a real directory (or the final entry itself). */
  readonly path: string;
  /** What is at `path`, when something is. */
  readonly stat: BigIntStats | undefined;
  /** The longest prefix of `path` that exists (`path` itself when it exists). */
  readonly existing: string;
}

/** Splits an absolute or relative in-root path into its components. */
export function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/**
 * Resolves `path` inside `tree` the way the kernel would inside a chroot: symlinks are followed,
 * an absolute target restarts at the root, and `..` never climbs above it. Components past the
 * first missing one are taken lexically. With `followLast` false the final component is not
 * followed (for creating or replacing it). Throws `RootPathError` on a loop or when a
 * non-directory is used as a directory.
 */
export async function resolveInRoot(tree: FileTree, path: string, options: { followLast?: boolean } = {}): Promise<ResolvedPath> {
  const followLast = options.followLast ?? true;
  const queue = components(path);
  const current: string[] = [];
  // How many leading components of `current` are known to exist.
  let existingDepth = 0;
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '..') {
      current.pop();
      existingDepth = Math.min(existingDepth, current.length);
      continue;
    }
    current.push(part);
    if (existingDepth < current.length - 1) continue; // below a missing directory: lexical
    const rel = current.join('/');
    const st = await tree.lstat(rel);
    if (st === undefined) continue;
    if (st.isSymbolicLink() && (queue.length > 0 || followLast)) {
      if (++hops > MAX_SYMLINK_HOPS) throw new RootPathError(path, 'too many levels of symbolic links');
      const target = await tree.readlink(rel);
      current.pop();
      if (target.startsWith('/')) current.length = 0;
      queue.unshift(...components(target));
      existingDepth = current.length;
      continue;
    }
    if (queue.length > 0 && !st.isDirectory()) throw new RootPathError(path, `/${rel} is not a directory`);
    existingDepth = current.length;
  }
  const resolved = current.join('/');
  const stat = existingDepth === current.length ? await tree.lstat(resolved) : undefined;
  return { path: resolved, stat, existing: current.slice(0, existingDepth).join('/') };
}

/** Reads a whole (small) file of a tree, following symlinks inside the root; undefined if absent. */
export async function readTreeFile(tree: FileTree, path: string, maxBytes: number): Promise<Buffer | undefined> {
  const resolved = await resolveInRoot(tree, path);
  if (resolved.stat === undefined || !resolved.stat.isFile()) return undefined;
  const host = await tree.hostPath(resolved.path);
  if (host === undefined) return undefined;
  const handle = await open(host, 'r');
  try {
    const size = Math.min(Number(resolved.stat.size), maxBytes);
    const buffer = Buffer.alloc(size);
    const { bytesRead } = await handle.read(buffer, 0, size, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
