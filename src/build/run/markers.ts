import { lstat, readdir, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { OPAQUE_WHITEOUT, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX, comparePaths, tarChunks, type LayerEntry } from '../../layers/index.js';
import { SnapshotError } from './errors.js';
import { gnuTarExtract } from './gnutar.js';
import { isRoot } from './host.js';
import { opaqueXattr, type OverlayXattrNamespace } from './layerstack.js';

/**
 * Writing overlay-format markers into an extracted layer directory, so it can serve as an
 * overlay lower directory (and as a layer of `LayerStackTree`). Node can create neither device
 * nodes nor xattrs: both are written by GNU tar extracting a small generated archive, which also
 * puts back the modification times of the directories it touched.
 */

export interface OverlayMarkers {
  /** Paths (relative to the layer) deleted by the layer: each becomes a whiteout device. */
  readonly whiteouts?: readonly string[] | undefined;
  /** Existing directories that hide the layers below: each gets the opaque xattr. */
  readonly opaqueDirs?: readonly string[] | undefined;
}

export interface MarkerOptions {
  /** Default: `trusted` when running as root, else `user`. */
  readonly namespace?: OverlayXattrNamespace | undefined;
  readonly signal?: AbortSignal | undefined;
}

export function defaultXattrNamespace(): OverlayXattrNamespace {
  return isRoot() ? 'trusted' : 'user';
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/**
 * Creates the whiteouts and opaque markers in `dir`. A whiteout path must not exist yet (its
 * parent must); an opaque path must be an existing directory other than the root. Directory
 * metadata (mode, owner, times) is left as it was.
 */
export async function writeOverlayMarkers(dir: string, markers: OverlayMarkers, options: MarkerOptions = {}): Promise<void> {
  await writeMarkers(dir, markers, options, new Map());
}

interface Times {
  readonly atime: number;
  readonly mtime: number;
}

async function writeMarkers(dir: string, markers: OverlayMarkers, options: MarkerOptions, times: Map<string, Times>): Promise<void> {
  const whiteouts = markers.whiteouts ?? [];
  const opaque = new Set(markers.opaqueDirs ?? []);
  if (whiteouts.length === 0 && opaque.size === 0) return;
  if (opaque.has('')) throw new SnapshotError(`${dir}: the root of a layer directory cannot be marked opaque (leave the layers below it out of the stack instead)`);
  const attr = opaqueXattr(options.namespace ?? defaultXattrNamespace());

  // Every directory whose listing or xattrs change. GNU tar gets their current metadata so it
  // leaves it alone; their times are put back afterwards (tar keeps whole seconds only).
  const dirs = new Set<string>(opaque);
  for (const path of whiteouts) dirs.add(parentOf(path));
  const entries: LayerEntry[] = [];
  for (const path of dirs) {
    const st = await lstat(path === '' ? dir : join(dir, path), { bigint: true });
    if (!times.has(path)) times.set(path, { atime: Number(st.atimeNs) / 1e9, mtime: Number(st.mtimeNs) / 1e9 });
    if (path === '') continue; // the root is not an archive entry
    entries.push({
      path,
      type: 'directory',
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: 0,
      mtime: Number(st.mtimeNs / 1_000_000_000n),
      xattrs: opaque.has(path) ? { [attr]: new TextEncoder().encode('y') } : undefined,
    });
  }
  for (const path of whiteouts) {
    entries.push({ path, type: 'char-device', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, devmajor: 0, devminor: 0 });
  }
  entries.sort((a, b) => comparePaths(a.path, b.path));

  const chunks: Uint8Array[] = [];
  for await (const chunk of tarChunks(entriesOf(entries))) chunks.push(chunk);
  await gnuTarExtract(dir, Buffer.concat(chunks), [attr], options.signal);
  for (const path of dirs) {
    const t = times.get(path)!;
    await utimes(path === '' ? dir : join(dir, path), t.atime, t.mtime);
  }
}

async function* entriesOf(entries: readonly LayerEntry[]): AsyncGenerator<LayerEntry> {
  yield* entries;
}

/** What `convertWhiteouts` found and wrote. */
export interface ConvertedWhiteouts {
  readonly whiteouts: readonly string[];
  readonly opaqueDirs: readonly string[];
  /**
   * The layer hides every layer below it (`.wh..wh..opq` at its root): leave those out of the
   * stack, since a lower directory's root cannot be opaque.
   */
  readonly opaqueRoot: boolean;
}

/**
 * Turns an extracted layer that kept its OCI whiteout files (`.wh.NAME`, `.wh..wh..opq`: see
 * `extractLayer`'s `whiteouts: 'keep'`) into overlay format in place: the files are removed and
 * replaced by whiteout devices and opaque xattrs, directory times unchanged.
 */
export async function convertWhiteouts(dir: string, options: MarkerOptions = {}): Promise<ConvertedWhiteouts> {
  const whiteouts: string[] = [];
  const opaqueDirs: string[] = [];
  const remove: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(rel === '' ? dir : join(dir, rel), { withFileTypes: true });
    for (const entry of entries) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.name.startsWith(WHITEOUT_PREFIX)) {
        remove.push(path);
        if (entry.name === OPAQUE_WHITEOUT) opaqueDirs.push(rel);
        else if (!entry.name.startsWith(WHITEOUT_META_PREFIX)) whiteouts.push(rel === '' ? entry.name.slice(WHITEOUT_PREFIX.length) : `${rel}/${entry.name.slice(WHITEOUT_PREFIX.length)}`);
      } else if (entry.isDirectory()) {
        await walk(path);
      }
    }
  };
  await walk('');
  // An opaque root cannot be expressed in a lower directory (overlayfs ignores the marker on a
  // layer's root); the caller leaves the layers below out of the stack instead.
  const opaqueRoot = opaqueDirs.includes('');
  if (opaqueRoot) opaqueDirs.splice(opaqueDirs.indexOf(''), 1);
  // A layer may delete a path of the layers below and create it anew. A new file hides the old
  // one by itself; a new directory must also hide the old one's children: make it opaque.
  const deletions: string[] = [];
  for (const path of whiteouts) {
    const st = await lstat(join(dir, path)).catch(() => undefined);
    if (st === undefined) deletions.push(path);
    else if (st.isDirectory() && !opaqueDirs.includes(path)) opaqueDirs.push(path);
  }
  // Removing a marker file changes its directory's times: keep the ones from before.
  const times = new Map<string, Times>();
  for (const path of new Set(remove.map(parentOf))) {
    const st = await lstat(path === '' ? dir : join(dir, path), { bigint: true });
    times.set(path, { atime: Number(st.atimeNs) / 1e9, mtime: Number(st.mtimeNs) / 1e9 });
  }
  for (const path of remove) await rm(join(dir, path), { force: true });
  await writeMarkers(dir, { whiteouts: deletions, opaqueDirs }, options, times);
  // Directories that only lost aufs metadata files were not part of the archive.
  for (const [path, t] of times) await utimes(path === '' ? dir : join(dir, path), t.atime, t.mtime);
  return { whiteouts: deletions, opaqueDirs, opaqueRoot };
}
