import type { BigIntStats } from 'node:fs';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import type { DockerignoreMatcher } from '../dockerfile/index.js';
import { comparePaths, LayerSourceError, type LayerEntry, type LayerEntryType, type LayerSource } from '../layers/index.js';
import { CopyConflictError } from './errors.js';
import { applyModeSpec, isRootOwner, type ModeSpec, type Owner } from './modes.js';
import { baseName, joinPath, parentPath, pathComponents, prefixMatch, rootRelative } from './paths.js';
import { sortedChildren, type ResolvedSource, type SourceTree } from './source-tree.js';
import { KnownTree, LayeredView, resolveDestination, statType, type NodeInfo, type PathView, type Probe } from './view.js';

/**
 * The file operation of COPY and ADD, after BuildKit's (fsutil's `copy.Copy` driven by the
 * Dockerfile frontend): it plans, entry by entry, what the new layer holds, against what is known
 * of the stage's root. The rules, from fsutil:
 * - the destination's parent (the destination itself when it ends in `/`) is created with its
 *   missing parents: 0755, owned by the `--chown` user, time `SOURCE_DATE_EPOCH`; a directory
 *   that exists is left as it is;
 * - the destination is resolved inside the root, following symlinks; a file copied onto an
 *   existing directory lands inside it, under its own name;
 * - a directory source copies its contents; the destination directory, when missing, is created
 *   like a parent; directories inside take the source's metadata, existing or not;
 * - every copied entry gets the `--chown` owner (else the source's: 0:0 for the build context),
 *   the `--chmod` mode (symlinks excepted), and its time clamped to `SOURCE_DATE_EPOCH`;
 * - a file cannot replace a directory, nor a directory a non-directory;
 * - hardlinked files of a source stay hardlinked.
 *
 * On a stage whose base layers were not fetched (a lazy root), a directory whose existence is
 * unknown and that would be created as root-owned 0755 is left out of the layer: unpacking the
 * layer then keeps an existing directory as it is, follows an existing symlink, and creates a
 * missing one 0755 root-owned, which is what BuildKit would have written in each case. When that
 * is not enough (the directory would get another owner; a file's destination may be a directory)
 * the planner throws `RootfsNeeded` and the stage fetches its base and plans again.
 */

/** Thrown when planning needs facts about the base image's files that a lazy root lacks. */
export class RootfsNeeded extends Error {
  override name = 'RootfsNeeded';
  constructor(readonly reason: string) {
    super(`the base image's files are needed: ${reason}`);
  }
}

/** Where an entry's bytes come from. */
/** Where an entry's bytes come from, and the file's stat when it was planned (the stat index keys on it). */
type Content = { readonly kind: 'host'; readonly path: string; readonly stat: BigIntStats };

/** One entry of the new layer. */
export interface PlannedEntry {
  readonly path: string;
  readonly type: LayerEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly size: number;
  readonly linkname?: string | undefined;
  readonly devmajor?: number | undefined;
  readonly devminor?: number | undefined;
  readonly content?: Content | undefined;
  /** `dev:ino` of a file with several links in its source, to keep hardlinks. */
  readonly inode?: string | undefined;
}

export interface CopyPlanOptions {
  /** The stage's root before this step. */
  readonly view: PathView;
  /** Whether directories of unknown existence may be left to the base (see the module comment). */
  readonly lazy: boolean;
  /** Seconds since the epoch: the time of created directories, and the clamp of copied times. */
  readonly epoch: number;
  /** `clamp`: copied entries keep their times, lowered to `epoch`; `keep`: as found. */
  readonly timestamps: 'clamp' | 'keep';
}

/** How one source is copied. */
export interface CopyOptions {
  /** `--chown`, resolved. */
  readonly owner?: Owner | undefined;
  /** `--chmod`. */
  readonly mode?: ModeSpec | undefined;
  /** A directory source copies its contents (true for local sources), or itself (git). */
  readonly copyDirContents: boolean;
  /** `--exclude`, matched against paths relative to the source. */
  readonly exclude?: DockerignoreMatcher | undefined;
  /** `--parents`: only what matches this pattern (and the directories on the way) is copied. */
  readonly include?: string | undefined;
  /** Unpacking an archive (ADD): anything but a directory over a directory is replaced, no conflict errors. */
  readonly replace?: boolean | undefined;
}

/** The layer a COPY or ADD step is planning. */
export class CopyPlan {
  readonly #options: CopyPlanOptions;
  /** What this step wrote or relied on, over the stage's view. */
  readonly #tree = new KnownTree();
  readonly #entries = new Map<string, PlannedEntry>();
  readonly #view: PathView;

  constructor(options: CopyPlanOptions) {
    this.#options = options;
    this.#view = new LayeredView([this.#tree], options.view);
  }

  /** The root as it will be after this step (so far). */
  get view(): PathView {
    return this.#view;
  }

  get entryCount(): number {
    return this.#entries.size;
  }

  /**
   * fsutil's `MkdirAll`: the directory at `path` (absolute), following symlinks, with its missing
   * parents made 0755, owned by `owner`, timed `epoch`. Existing directories are left alone.
   */
  async mkdirAll(path: string, owner: Owner | undefined): Promise<void> {
    const resolved = await resolveDestination(this.#view, rootRelative(path), true);
    if (resolved.probe.state === 'present') {
      if (resolved.probe.node.type === 'directory') return;
      throw new CopyConflictError(`/${resolved.path}`, 'cannot create a directory: a non-directory is in the way');
    }
    let current = '';
    for (const part of pathComponents(resolved.path)) {
      current = joinPath(current, part);
      const probe = await this.#view.probe(current);
      if (probe.state === 'present') {
        if (probe.node.type === 'directory') continue;
        throw new CopyConflictError(`/${current}`, 'cannot create a directory: a non-directory is in the way');
      }
      if (probe.state === 'unknown') {
        if (!this.#options.lazy || !isRootOwner(owner)) throw new RootfsNeeded(`whether /${current} exists decides who owns it`);
        this.#tree.set(current, { type: 'directory', mode: 0o755, uid: 0, gid: 0, implicit: true });
        continue;
      }
      const ids = owner ?? { uid: 0, gid: 0 };
      this.#plan({ path: current, type: 'directory', mode: 0o755, uid: ids.uid, gid: ids.gid, mtime: this.#options.epoch, size: 0 });
    }
  }

  /**
   * Copies one resolved source (a file or a directory of `tree`) to `dest`, an absolute path as
   * the Dockerfile gives it after WORKDIR (a trailing `/` marks a directory). `name` is the
   * source's name before symlinks were followed (a file lands under that name in a directory).
   */
  async copy(tree: SourceTree, source: ResolvedSource, name: string, dest: string, options: CopyOptions): Promise<void> {
    const ensure = dest.endsWith('/') ? dest : `/${parentPath(rootRelative(dest))}`;
    await this.mkdirAll(ensure, options.owner);
    const resolved = await resolveDestination(this.#view, rootRelative(dest), true);
    const srcIsDir = source.stat.isDirectory();
    let probe: Probe = resolved.probe;
    if (probe.state === 'unknown') {
      if (!srcIsDir) throw new RootfsNeeded(`${dest} may be an existing directory`);
      // A directory lands at the destination whether it exists or not.
      await this.mkdirAll(`/${resolved.path}`, options.owner);
      probe = await this.#view.probe(resolved.path);
    }
    const destExists = probe.state === 'present';
    const destIsDir = probe.state === 'present' && probe.node.type === 'directory';
    let destPath = resolved.path;
    if ((!options.copyDirContents && srcIsDir && destExists) || (!srcIsDir && destIsDir)) destPath = joinPath(destPath, baseName(name) || '');
    const target = options.copyDirContents && srcIsDir && !destExists ? destPath : parentPath(destPath);
    await this.mkdirAll(`/${target}`, options.owner);
    await this.#copyEntry(tree, source.path, source.stat, '', destPath, false, options, []);
  }

  /** fsutil's `copier.copy` for one entry and, for a directory, everything below it. */
  async #copyEntry(
    tree: SourceTree,
    srcPath: string,
    st: BigIntStats,
    components: string,
    target: string,
    overwrite: boolean,
    options: CopyOptions,
    pendingParents: PlannedEntry[],
  ): Promise<void> {
    const type = statType(st);
    if (type === undefined) return; // a socket: not archivable, skipped as fsutil does
    let fullyIncluded = options.include === undefined;
    if (components !== '') {
      if (options.include !== undefined) {
        const pattern = type === 'directory' ? options.include.replace(/\/+$/, '') : options.include;
        const { match, partial } = prefixMatch(pattern, components);
        if (!match) return;
        if (type !== 'directory' && partial) return;
        fullyIncluded = !partial;
      }
      if (options.exclude !== undefined && options.exclude.decide(components, type === 'directory') === 'exclude') return;
    }
    const meta = this.#metadata(tree, st, type, options);
    const targetProbe = await this.#view.probe(target);

    if (type !== 'directory') {
      if (targetProbe.state === 'present' && targetProbe.node.type === 'directory' && options.replace !== true) {
        throw new CopyConflictError(`/${target}`, 'cannot replace a directory with a file');
      }
      this.#flushParents(pendingParents);
      const common = { path: target, type, ...meta, size: 0 };
      if (type === 'file') {
        const size = Number(st.size);
        const host = size === 0 ? undefined : await tree.hostPath(srcPath);
        if (size !== 0 && host === undefined) throw new CopyConflictError(srcPath, 'the source file vanished');
        this.#plan({
          ...common,
          size,
          ...(host === undefined ? {} : { content: { kind: 'host', path: host, stat: st } }),
          ...(st.nlink > 1n ? { inode: `${tree.description}\0${st.dev}:${st.ino}` } : {}),
        });
      } else if (type === 'symlink') {
        this.#plan({ ...common, linkname: await tree.readlink(srcPath) });
      } else if (type === 'char-device' || type === 'block-device') {
        const rdev = st.rdev;
        const devmajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
        const devminor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
        this.#plan({ ...common, devmajor, devminor });
      } else {
        this.#plan(common);
      }
      return;
    }

    // A directory.
    const entry: PlannedEntry = { path: target, type: 'directory', ...meta, size: 0 };
    let parents = pendingParents;
    if (!fullyIncluded) {
      // `--parents` on the way to a match: made only if something below it is copied.
      parents = [...pendingParents, entry];
    } else if (targetProbe.state === 'absent') {
      this.#flushParents(pendingParents);
      this.#plan(entry);
    } else if (targetProbe.state === 'unknown') {
      this.#flushParents(pendingParents);
      // Existing or not, a directory inside the copy takes the source's metadata; the top one
      // was made by mkdirAll just before, so it is not unknown here.
      if (overwrite) this.#plan(entry);
      else this.#tree.set(target, { type: 'directory', mode: 0o755, uid: 0, gid: 0, implicit: true });
    } else if (targetProbe.node.type !== 'directory') {
      if (options.replace !== true) throw new CopyConflictError(`/${target}`, 'cannot copy a directory onto a non-directory');
      this.#flushParents(pendingParents);
      this.#plan(entry);
    } else {
      this.#flushParents(pendingParents);
      if (overwrite) this.#plan(entry);
    }
    for (const child of await sortedChildren(tree, srcPath)) {
      const childPath = joinPath(srcPath, child);
      const childStat = await tree.lstat(childPath);
      if (childStat === undefined) continue; // vanished (or excluded) meanwhile
      await this.#copyEntry(tree, childPath, childStat, joinPath(components, child), joinPath(target, child), true, options, parents);
    }
  }

  /** Plans the `--parents` directories that were waiting for something to be copied below them. */
  #flushParents(parents: PlannedEntry[]): void {
    for (const parent of parents) if (!this.#entries.has(parent.path)) this.#plan(parent);
    parents.length = 0;
  }

  #metadata(tree: SourceTree, st: BigIntStats, type: LayerEntryType, options: CopyOptions): { mode: number; uid: number; gid: number; mtime: number } {
    const found = Number(st.mode & 0o7777n);
    const mode = type === 'symlink' || options.mode === undefined ? found : applyModeSpec(options.mode, found, type === 'directory');
    const owner = options.owner ?? (tree.resetOwner ? { uid: 0, gid: 0 } : { uid: Number(st.uid), gid: Number(st.gid) });
    const seconds = Number(st.mtimeNs / 1_000_000_000n);
    const mtime = this.#options.timestamps === 'keep' ? seconds : Math.min(seconds, this.#options.epoch);
    return { mode, uid: owner.uid, gid: owner.gid, mtime };
  }

  #plan(entry: PlannedEntry): void {
    const previous = this.#entries.get(entry.path);
    if (previous !== undefined && previous.type === 'directory' && entry.type !== 'directory') {
      // A later source replaced a directory this step made: drop what it held.
      const prefix = `${entry.path}/`;
      for (const key of [...this.#entries.keys()]) if (key.startsWith(prefix)) this.#entries.delete(key);
    }
    this.#entries.set(entry.path, entry);
    const node: NodeInfo = { type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }) };
    this.#tree.set(entry.path, node);
  }

  /**
   * Adds the existing directories above the planned entries, with their metadata, as BuildKit's
   * layers (diffs) hold them. Unpacked on its own as one directory of an overlay stack, a layer
   * without them would give those directories made-up metadata that hides the real ones below.
   * Directories a lazy root does not know are left out (they stay the base's).
   */
  async includeParents(): Promise<void> {
    const missing = new Set<string>();
    for (const path of this.#entries.keys()) {
      for (let parent = parentPath(path); parent !== '' && !this.#entries.has(parent); parent = parentPath(parent)) missing.add(parent);
    }
    for (const path of missing) {
      const probe = await this.#options.view.probe(path);
      if (probe.state !== 'present' || probe.node.type !== 'directory' || probe.node.implicit === true) continue;
      const { mode, uid, gid } = probe.node;
      this.#entries.set(path, { path, type: 'directory', mode, uid, gid, mtime: this.#options.epoch, size: 0 });
    }
  }

  /** The planned entries in archive order, with where each file's bytes are read (for cache keys). */
  plannedEntries(): readonly PlannedEntry[] {
    return [...this.#entries.values()].sort((a, b) => comparePaths(a.path, b.path));
  }

  /** What the stage knows after this layer: its entries and the directories it relied on. */
  nodes(): Iterable<readonly [string, NodeInfo]> {
    return this.#tree.entries();
  }

  /**
   * The layer's entries in archive order (`comparePaths`), files with several links in one
   * source written once and linked after.
   */
  layerSource(): LayerSource {
    const planned = [...this.#entries.values()].sort((a, b) => comparePaths(a.path, b.path));
    const firstOfInode = new Map<string, string>();
    const entries: LayerEntry[] = planned.map((entry) => {
      const { content, inode, ...fields } = entry;
      if (inode !== undefined) {
        const first = firstOfInode.get(inode);
        if (first !== undefined) return { ...fields, type: 'hardlink', size: 0, linkname: first };
        firstOfInode.set(inode, entry.path);
      }
      if (content === undefined || entry.size === 0) return { ...fields, size: entry.type === 'file' ? entry.size : 0 };
      return { ...fields, hostPath: content.path, open: () => readFileExactly(content.path, entry.path, entry.size) };
    });
    return {
      async *[Symbol.asyncIterator]() {
        yield* entries;
      },
    };
  }
}

/** Files up to this size are read in one call; larger ones in chunks of this size. */
const READ_CHUNK = 1024 * 1024;

/**
 * Reads exactly `size` bytes of a host file, failing when it shrank or grew since it was
 * planned (a layer must hold what its entry announced). Symlinks are never followed.
 */
export async function* readFileExactly(hostPath: string, entryPath: string, size: number): AsyncGenerator<Uint8Array> {
  const handle = await open(hostPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    let position = 0;
    while (position < size) {
      const buffer = Buffer.allocUnsafeSlow(Math.min(size - position, READ_CHUNK));
      const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, position);
      if (bytesRead === 0) throw new LayerSourceError(entryPath, `the file shrank while it was copied (${position} of ${size} bytes)`);
      position += bytesRead;
      yield bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead);
    }
    const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, size);
    if (bytesRead !== 0) throw new LayerSourceError(entryPath, `the file grew while it was copied (more than ${size} bytes)`);
  } finally {
    await handle.close();
  }
}
