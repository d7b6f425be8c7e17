import type { BigIntStats } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StevedoreError, throwIfAborted } from '../../errors.js';
import { comparePaths, normalizeArchivePath, opaqueWhiteoutPath, whiteoutPath, type LayerEntry, type LayerSource } from '../../layers/index.js';
import { layerEntryOf, LAYER_XATTRS, whiteoutEntry } from './entries.js';
import { SnapshotError } from './errors.js';
import { gnuTarEntries, gnuTarHeaders } from './gnutar.js';
import { findExecutable } from './host.js';
import { isOpaqueValue, isWhiteout, KnownOpaque, LayerStackTree, opaqueXattr, type OverlayXattrNamespace } from './layerstack.js';
import { defaultXattrNamespace } from './markers.js';
import { runToolChecked } from './process.js';
import type { PrepareOptions, Snapshot, SnapshotDiffOptions, Snapshotter } from './snapshot.js';
import { DirectoryTree, lstatOrUndefined, type FileTree } from './tree.js';
import type { DirectoryRootfs } from './types.js';

/**
 * The copy snapshotter, for hosts where overlayfs cannot be mounted. `prepare` merges the layer
 * directories into one root with `cp -a` (a layer at a time: its whiteouts and opaque
 * directories applied first, then its files copied over); `diff` walks that root against the
 * layers' merged view and emits what differs.
 *
 * A directory that the command deleted and re-created is recognised by its inode (or, where the
 * filesystem records it, its birth time) and becomes an opaque directory, as on overlayfs; the
 * parents of every changed entry are included, as overlayfs's upper directory holds them.
 */
export interface CopySnapshotterOptions {
  /** Where snapshot directories go. Default: the OS temp directory. */
  readonly workDir?: string | undefined;
  /** The xattr namespace of the layers' opaque markers. Default: `trusted` as root, else `user`. */
  readonly namespace?: OverlayXattrNamespace | undefined;
}

export class CopySnapshotter implements Snapshotter {
  readonly mode = 'copy';

  constructor(private readonly options: CopySnapshotterOptions = {}) {}

  async prepare(lowerDirs: readonly string[], options: PrepareOptions = {}): Promise<Snapshot> {
    const cp = findExecutable('cp');
    const touch = findExecutable('touch');
    if (cp === undefined || touch === undefined) throw new SnapshotError('the copy snapshotter needs cp and touch (coreutils)');
    const namespace = this.options.namespace ?? defaultXattrNamespace();
    const dir = await mkdtemp(join(this.options.workDir ?? tmpdir(), 'stevedore-snap-'));
    const root = join(dir, 'root');
    try {
      await mkdir(root, { mode: 0o755 });
      const opaque: ReadonlySet<string>[] = [];
      for (const [index, layer] of lowerDirs.entries()) {
        throwIfAborted(options.signal);
        opaque.push(await applyLayer(root, layer, index === 0, { cp, touch, namespace, signal: options.signal }));
      }
      const inodes = await directoryInodes(root);
      const before = new LayerStackTree([...lowerDirs], new KnownOpaque(opaque));
      return new CopySnapshot(dir, root, before, inodes, BigInt(Date.now()) * 1_000_000n);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if (err instanceof StevedoreError) throw err;
      throw new SnapshotError(`cannot prepare a copy snapshot: ${(err as Error).message}`, { cause: err });
    }
  }
}

interface ApplyTools {
  readonly cp: string;
  readonly touch: string;
  readonly namespace: OverlayXattrNamespace;
  readonly signal: AbortSignal | undefined;
}

/** What a walk of one layer directory found. */
interface LayerScan {
  readonly whiteouts: string[];
  readonly opaque: Set<string>;
  /** Paths whose type (directory or not) differs from what the root has there. */
  readonly conflicts: string[];
}

async function scanLayer(layer: string, root: string, first: boolean, namespace: OverlayXattrNamespace, signal: AbortSignal | undefined): Promise<LayerScan> {
  const whiteouts: string[] = [];
  const dirs: string[] = [];
  const conflicts: string[] = [];
  const walk = async (rel: string, rootHasDir: boolean): Promise<void> => {
    const entries = await readdir(rel === '' ? layer : join(layer, rel), { withFileTypes: true });
    // One listing of the root's directory tells which names change between directory and not.
    const rootTypes = new Map<string, boolean>();
    if (!first && rootHasDir) {
      const existing = await readdir(rel === '' ? root : join(root, rel), { withFileTypes: true }).catch(() => []);
      for (const e of existing) rootTypes.set(e.name, e.isDirectory());
    }
    for (const entry of entries) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isCharacterDevice()) {
        const st = await lstat(join(layer, path), { bigint: true });
        if (isWhiteout(st)) {
          whiteouts.push(path);
          continue;
        }
      }
      const isDir = entry.isDirectory();
      const rootIsDir = rootTypes.get(entry.name);
      if (rootIsDir !== undefined && rootIsDir !== isDir) conflicts.push(path);
      if (isDir) {
        dirs.push(path);
        await walk(path, rootIsDir === true);
      }
    }
  };
  await walk('', true);
  const attr = opaqueXattr(namespace);
  const opaque = new Set<string>();
  if (dirs.length > 0) {
    for (const h of await gnuTarHeaders({ directory: layer, paths: dirs, xattrs: [attr], signal })) {
      if (isOpaqueValue(h.xattrs[attr])) opaque.add(normalizeArchivePath(h.name));
    }
  }
  return { whiteouts, opaque, conflicts };
}

async function removeChildren(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
}

/** Applies one layer onto the root; returns its opaque directories. */
async function applyLayer(root: string, layer: string, first: boolean, tools: ApplyTools): Promise<ReadonlySet<string>> {
  const scan = await scanLayer(layer, root, first, tools.namespace, tools.signal);
  if (!first) {
    for (const path of scan.whiteouts) await rm(join(root, path), { recursive: true, force: true });
    for (const path of scan.opaque) {
      const st = await lstatOrUndefined(join(root, path));
      if (st?.isDirectory()) await removeChildren(join(root, path));
    }
    for (const path of scan.conflicts) await rm(join(root, path), { recursive: true, force: true });
  }
  // -a keeps owners, modes, times, links and xattrs (file capabilities); --remove-destination
  // replaces a file instead of writing through it (it may be hard-linked to another).
  await runToolChecked(tools.cp, ['-a', '--remove-destination', '--', `${layer}/.`, `${root}/`], { signal: tools.signal });
  if (scan.whiteouts.length > 0) {
    // cp copied the whiteout devices too: delete them, and give their directories back the
    // times the layer has (cp set those before the deletion changed them).
    const parents = new Set<string>();
    for (const path of scan.whiteouts) {
      await rm(join(root, path), { force: true });
      const slash = path.lastIndexOf('/');
      parents.add(slash < 0 ? '' : path.slice(0, slash));
    }
    for (const parent of parents) {
      await runToolChecked(tools.touch, ['-c', '-h', '-m', '-r', parent === '' ? layer : join(layer, parent), '--', parent === '' ? root : join(root, parent)]);
    }
  }
  return scan.opaque;
}

async function directoryInodes(root: string): Promise<Map<string, bigint>> {
  const inodes = new Map<string, bigint>();
  const walk = async (rel: string): Promise<void> => {
    const abs = rel === '' ? root : join(root, rel);
    inodes.set(rel, (await lstat(abs, { bigint: true })).ino);
    for (const entry of await readdir(abs, { withFileTypes: true })) {
      if (entry.isDirectory()) await walk(rel === '' ? entry.name : `${rel}/${entry.name}`);
    }
  };
  await walk('');
  return inodes;
}

type PlanItem = { readonly kind: 'entry'; readonly path: string } | { readonly kind: 'whiteout'; readonly path: string; readonly mtime: number };

class CopySnapshot implements Snapshot {
  readonly mode = 'copy';
  readonly rootfs: DirectoryRootfs;

  constructor(
    private readonly dir: string,
    private readonly root: string,
    private readonly before: LayerStackTree,
    private readonly inodes: ReadonlyMap<string, bigint>,
    /** When the root was ready: a directory born later was made by the command. */
    private readonly preparedNs: bigint,
  ) {
    this.rootfs = { kind: 'directory', path: root };
  }

  tree(): FileTree {
    return new DirectoryTree(this.root);
  }

  diff(options: SnapshotDiffOptions = {}): LayerSource {
    return { [Symbol.asyncIterator]: () => this.#diff(options.signal) };
  }

  async release(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }

  async *#diff(signal: AbortSignal | undefined): AsyncGenerator<LayerEntry> {
    const plan = await this.#plan(signal);
    const paths = plan.filter((item) => item.kind === 'entry').map((item) => item.path);
    const entries = gnuTarEntries({ directory: this.root, paths, xattrs: [...LAYER_XATTRS], signal })[Symbol.asyncIterator]();
    try {
      for (const item of plan) {
        if (item.kind === 'whiteout') {
          yield whiteoutEntry(item.path, item.mtime);
          continue;
        }
        const next = await entries.next();
        if (next.done === true) throw new SnapshotError(`GNU tar ended before ${item.path}`);
        const name = normalizeArchivePath(next.value.header.name);
        if (name !== item.path) throw new SnapshotError(`GNU tar archived ${name} where ${item.path} was expected`);
        yield layerEntryOf(next.value, name);
      }
      const rest = await entries.next();
      if (rest.done !== true) throw new SnapshotError('GNU tar archived more entries than asked');
    } finally {
      await entries.return?.();
    }
  }

  /** The comparison walk: the ordered list of what goes into the layer. */
  async #plan(signal: AbortSignal | undefined): Promise<PlanItem[]> {
    const plan: PlanItem[] = [];
    // Directories entered but not emitted yet: emitted before their first changed child.
    const pending: string[] = [];
    const emit = (item: PlanItem): void => {
      for (const dir of pending.splice(0)) plan.push({ kind: 'entry', path: dir });
      plan.push(item);
    };
    const abs = (path: string): string => (path === '' ? this.root : join(this.root, path));

    const walk = async (dir: string, fresh: boolean): Promise<void> => {
      throwIfAborted(signal);
      const after = await readdir(abs(dir));
      const before = fresh ? new Map() : await this.before.entries(dir);
      const names = [...new Set([...after, ...before.keys()])].sort(comparePaths);
      const afterSet = new Set(after);
      for (const name of names) {
        const path = dir === '' ? name : `${dir}/${name}`;
        const b = before.get(name);
        if (!afterSet.has(name)) {
          const parent = await lstat(abs(dir), { bigint: true });
          emit({ kind: 'whiteout', path: whiteoutPath(path), mtime: Number(parent.mtimeNs / 1_000_000_000n) });
          continue;
        }
        const a = await lstat(abs(path), { bigint: true });
        // Sockets have no tar type: layers never hold them (GNU tar skips them on overlays too).
        if (a.isSocket()) continue;
        if (b === undefined || a.isDirectory() !== b.stat.isDirectory()) {
          emit({ kind: 'entry', path });
          if (a.isDirectory()) await walk(path, true);
          continue;
        }
        if (a.isDirectory()) {
          if (this.#replaced(path, a)) {
            emit({ kind: 'entry', path });
            plan.push({ kind: 'whiteout', path: opaqueWhiteoutPath(path), mtime: Number(a.mtimeNs / 1_000_000_000n) });
            await walk(path, true);
          } else if (!sameMetadata(a, b.stat)) {
            emit({ kind: 'entry', path });
            await walk(path, false);
          } else {
            pending.push(path);
            await walk(path, false);
            if (pending.at(-1) === path) pending.pop();
          }
          continue;
        }
        const bPath = await this.before.hostPath(path);
        if (!sameMetadata(a, b.stat) || bPath === undefined || !(await sameContent(abs(path), bPath, a))) emit({ kind: 'entry', path });
      }
    };
    await walk('', false);
    return plan;
  }

  #replaced(path: string, st: BigIntStats): boolean {
    const ino = this.inodes.get(path);
    if (ino !== undefined && ino !== st.ino) return true;
    // Inode numbers can be reused at once; a birth time after preparation cannot lie.
    return st.birthtimeNs > 0n && st.birthtimeNs > this.preparedNs;
  }
}

function sameMetadata(a: BigIntStats, b: BigIntStats): boolean {
  if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.mtimeNs !== b.mtimeNs) return false;
  if (a.isDirectory()) return true;
  return a.size === b.size && a.rdev === b.rdev;
}

const COMPARE_CHUNK = 256 * 1024;

/** Byte-compares two files of equal metadata (symlinks by target). Stops at the first difference. */
async function sameContent(a: string, b: string, st: BigIntStats): Promise<boolean> {
  if (st.isSymbolicLink()) {
    return (await readlink(a)) === (await readlink(b));
  }
  if (!st.isFile() || st.size === 0n) return true;
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.allocUnsafe(COMPARE_CHUNK);
    const bb = Buffer.allocUnsafe(COMPARE_CHUNK);
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, COMPARE_CHUNK, null), fb.read(bb, 0, COMPARE_CHUNK, null)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}
