import { chmod, chown, lstat, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { normalizeArchivePath, opaqueWhiteoutPath, whiteoutPath, type LayerEntry, type LayerSource } from '../../layers/index.js';
import { layerEntryOf, LAYER_XATTRS, whiteoutEntry } from './entries.js';
import { SnapshotError } from './errors.js';
import { gnuTarEntries } from './gnutar.js';
import { isOpaqueValue, LayerStackTree, opaqueXattr, XattrOpaque, type OverlayXattrNamespace } from './layerstack.js';
import { OVERLAY_MAX_LAYERS } from './overlayfs.js';
import type { PrepareOptions, Snapshot, SnapshotDiffOptions, Snapshotter } from './snapshot.js';
import type { FileTree } from './tree.js';
import type { OverlayRootfs } from './types.js';

export interface OverlaySnapshotterOptions {
  /** Where snapshot directories go (the same filesystem as the layers is best). Default: the OS temp directory. */
  readonly workDir?: string | undefined;
  /** Mount with `userxattr` inside a user namespace. Default: when not root. */
  readonly userxattr?: boolean | undefined;
  /** Mount with `volatile` (kernel 5.10 and later; see overlayMountOptions). Default: false. */
  readonly volatile?: boolean | undefined;
}

export class OverlaySnapshotter implements Snapshotter {
  readonly mode = 'overlay';

  constructor(private readonly options: OverlaySnapshotterOptions = {}) {}

  async prepare(lowerDirs: readonly string[], _options: PrepareOptions = {}): Promise<Snapshot> {
    if (lowerDirs.length > OVERLAY_MAX_LAYERS) throw new SnapshotError(`overlayfs stacks at most ${OVERLAY_MAX_LAYERS} layers; the image has ${lowerDirs.length}`);
    const dir = await mkdtemp(join(this.options.workDir ?? tmpdir(), 'stevedore-snap-'));
    try {
      for (const sub of ['l', 'upper', 'work', 'merged', 'empty']) await mkdir(join(dir, sub));
      for (const [i, lower] of lowerDirs.entries()) await symlink(lower, join(dir, 'l', String(i)));
      // The merged root takes the upper directory's attributes: give it the image's.
      const top = lowerDirs.at(-1);
      if (top !== undefined) {
        const st = await lstat(top);
        await chown(join(dir, 'upper'), st.uid, st.gid).catch(() => {});
        await chmod(join(dir, 'upper'), st.mode & 0o7777);
      }
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw new SnapshotError(`cannot prepare an overlay snapshot: ${(err as Error).message}`, { cause: err });
    }
    const rootfs: OverlayRootfs = {
      kind: 'overlay',
      dir,
      lowerDirs: [...lowerDirs],
      upperDir: join(dir, 'upper'),
      workDir: join(dir, 'work'),
      mountpoint: join(dir, 'merged'),
      userxattr: this.options.userxattr ?? process.getuid?.() !== 0,
      volatile: this.options.volatile ?? false,
    };
    return new OverlaySnapshot(rootfs);
  }
}

class OverlaySnapshot implements Snapshot {
  readonly mode = 'overlay';
  readonly #namespace: OverlayXattrNamespace;

  constructor(readonly rootfs: OverlayRootfs) {
    this.#namespace = rootfs.userxattr ? 'user' : 'trusted';
  }

  tree(): FileTree {
    const layers = [...this.rootfs.lowerDirs, this.rootfs.upperDir];
    return new LayerStackTree(layers, new XattrOpaque(layers, this.#namespace));
  }

  diff(options: SnapshotDiffOptions = {}): LayerSource {
    return overlayDiffSource(this.rootfs.upperDir, this.#namespace, options.signal);
  }

  async release(): Promise<void> {
    await rm(this.rootfs.dir, { recursive: true, force: true });
  }
}

/**
 * The layer held by an overlay upper directory: every entry as it is, a whiteout device
 * becoming `.wh.NAME` and an opaque directory gaining `.wh..wh..opq` right after it (where
 * containerd and BuildKit put them).
 */
export function overlayDiffSource(upperDir: string, namespace: OverlayXattrNamespace, signal?: AbortSignal): LayerSource {
  return { [Symbol.asyncIterator]: () => overlayDiff(upperDir, namespace, signal) };
}

async function* overlayDiff(upperDir: string, namespace: OverlayXattrNamespace, signal: AbortSignal | undefined): AsyncGenerator<LayerEntry> {
  const attr = opaqueXattr(namespace);
  for await (const entry of gnuTarEntries({ directory: upperDir, xattrs: [...LAYER_XATTRS, attr], wholeSeconds: true, signal })) {
    const h = entry.header;
    const path = normalizeArchivePath(h.name);
    if (path === '') continue;
    if (h.type === 'char-device' && h.devmajor === 0 && h.devminor === 0) {
      yield whiteoutEntry(whiteoutPath(path), h.mtime);
      continue;
    }
    yield layerEntryOf(entry, path);
    if (h.type === 'directory' && isOpaqueValue(h.xattrs[attr])) yield whiteoutEntry(opaqueWhiteoutPath(path), h.mtime);
  }
}
