import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { throwIfAborted } from '../errors.js';
import {
  OPAQUE_WHITEOUT,
  WHITEOUT_META_PREFIX,
  WHITEOUT_PREFIX,
  comparePaths,
  normalizeArchivePath,
  splitPath,
  type LayerEntry,
  type LayerEntryType,
  type LayerSource,
} from './entry.js';
import { InvalidArchiveError } from './errors.js';
import { openLayerInput, type LayerInput } from './extract.js';
import { Spool } from './spool.js';
import { readTar, type ArchiveLimits, type TarHeader } from './tar-reader.js';

export interface FlattenOptions {
  /** Where the content spool lives (as much disk as the winning file contents). Default: os.tmpdir(). */
  readonly tempDir?: string | undefined;
  /** mtime of directories the layers imply without listing them. Default 0. */
  readonly sourceDateEpoch?: number | undefined;
  readonly limits?: Partial<ArchiveLimits> | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The merged tree of several layers, as a source for `buildLayer`. Call `dispose()` when done. */
export interface FlattenedLayers extends LayerSource {
  /** Entries the flattened layer holds. */
  readonly entries: number;
  /** Removes the spool. The source cannot be read afterwards. */
  dispose(): Promise<void>;
}

/** File bytes in a spool, shared by every name of a hardlinked file. */
interface Content {
  spool: Spool;
  offset: number;
  readonly size: number;
  /** The file's own header: a hardlink has the metadata of the inode it names. */
  readonly header: TarHeader;
}

interface Node {
  readonly type: LayerEntryType;
  readonly header: TarHeader;
  /** Index of the layer the winning entry comes from (0 is the lowest). */
  readonly layer: number;
  readonly content?: Content | undefined;
}

/**
 * Squashes layers (lowest first) into one tree without extracting them: the result has no
 * whiteouts and, built with `buildLayer`, is the layer whose extraction equals applying the
 * layers one by one.
 *
 * Method: layers are read top-down, once each (so open remote blobs lazily with a
 * `LayerInput.content` function). The first entry seen for a path wins; whiteouts and opaque
 * markers of a layer hide the paths they name in every layer below it, and a non-directory hides
 * everything beneath it in lower layers. Winning file contents go to a spool file on disk, so
 * memory holds only metadata (a few hundred bytes per path) whatever the layer sizes. Contents
 * of files that lose are kept in a per-layer scratch spool until their layer ends, because a
 * later hardlink of the same layer may name them (the link then keeps the old bytes, as it does
 * when layers are applied). Output is sorted like every source of this module (`comparePaths`);
 * directories the layers imply without an entry get mode 0755, owner 0:0 and `sourceDateEpoch`.
 *
 * Not supported, each with `InvalidArchiveError` rather than a wrong result: a hardlink to a
 * file of another layer, and an entry or whiteout beneath a symlink of a lower layer (applying
 * layers resolves those through the symlink; no mainstream builder writes them).
 */
export async function flattenLayers(layers: ReadonlyArray<LayerInput | AsyncIterable<Uint8Array>>, options: FlattenOptions = {}): Promise<FlattenedLayers> {
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'stevedore-flatten-'));
  let spool: Spool | undefined;
  let scratch: Spool | undefined;
  try {
    spool = await Spool.create(join(dir, 'content'));
    scratch = await Spool.create(join(dir, 'scratch'));
    const nodes = await merge(layers, spool, scratch, options);
    await scratch.close();
    scratch = undefined;
    await spool.flush();
    const paths = withImpliedDirectories(nodes, options.sourceDateEpoch ?? 0);
    const owned = spool;
    let disposed = false;
    return {
      entries: paths.length,
      [Symbol.asyncIterator]: () => emit(paths, nodes, owned, () => disposed),
      async dispose() {
        if (disposed) return;
        disposed = true;
        await owned.close();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await scratch?.close();
    await spool?.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

interface Hides {
  /** Whited-out path → lowest layer index that hides it (the path and everything beneath). */
  readonly whiteouts: Map<string, number>;
  /** Opaque directory → lowest layer index marking it (everything beneath, not the directory). */
  readonly opaque: Map<string, number>;
}

async function merge(layers: ReadonlyArray<LayerInput | AsyncIterable<Uint8Array>>, spool: Spool, scratch: Spool, options: FlattenOptions): Promise<Map<string, Node>> {
  const nodes = new Map<string, Node>();
  const hides: Hides = { whiteouts: new Map(), opaque: new Map() };
  for (let index = layers.length - 1; index >= 0; index--) {
    throwIfAborted(options.signal);
    const winners = new Map<string, Node>();
    const files = new Map<string, Content>();
    const whiteouts: string[] = [];
    const opaque: string[] = [];
    const tar = await openLayerInput(layers[index]!);
    for await (const { header, content } of readTar(tar, { limits: options.limits, signal: options.signal })) {
      const path = normalizeArchivePath(header.name);
      if (path === '') continue;
      const { parent, base } = splitPath(path);
      if (base.startsWith(WHITEOUT_PREFIX)) {
        if (base === OPAQUE_WHITEOUT) opaque.push(parent);
        else if (!base.startsWith(WHITEOUT_META_PREFIX)) whiteouts.push(parent === '' ? base.slice(WHITEOUT_PREFIX.length) : `${parent}/${base.slice(WHITEOUT_PREFIX.length)}`);
        continue;
      }
      const visible = !nodes.has(path) && !hiddenFromAbove(path, nodes, hides);
      switch (header.type) {
        case 'file': {
          const target = visible ? spool : scratch;
          const offset = await target.append(content);
          const stored: Content = { spool: target, offset, size: header.size, header };
          files.set(path, stored);
          if (visible) winners.set(path, { type: 'file', header, layer: index, content: stored });
          break;
        }
        case 'hardlink': {
          const linkPath = normalizeArchivePath(header.linkname);
          const stored = files.get(linkPath);
          if (stored === undefined) {
            throw new InvalidArchiveError(`hardlink target ${JSON.stringify(header.linkname)} is not an earlier file of the same layer (flatten does not support links across layers)`, header.name, header.offset);
          }
          files.set(path, stored);
          if (!visible) break;
          if (stored.spool === scratch) {
            // The target lost to a higher layer, but this name of it survives: keep its bytes.
            stored.offset = await spool.append(scratch.read(stored.offset, stored.size));
            stored.spool = spool;
          }
          winners.set(path, { type: 'file', header: stored.header, layer: index, content: stored });
          break;
        }
        default:
          if (visible) winners.set(path, { type: header.type, header, layer: index });
      }
    }
    for (const [path, node] of winners) nodes.set(path, node);
    for (const path of whiteouts) hides.whiteouts.set(path, index);
    for (const path of opaque) hides.opaque.set(path, index);
    await scratch.clear();
  }
  checkSymlinkAncestors(nodes, hides);
  return nodes;
}

/** Whether a higher layer hid `path`: a whiteout of it or an ancestor, an opaque or non-directory ancestor. */
function hiddenFromAbove(path: string, nodes: Map<string, Node>, hides: Hides): boolean {
  if (hides.whiteouts.has(path)) return true;
  for (let p = splitPath(path).parent; p !== ''; p = splitPath(p).parent) {
    if (hides.whiteouts.has(p) || hides.opaque.has(p)) return true;
    const node = nodes.get(p);
    if (node !== undefined && node.type !== 'directory') return true;
  }
  return hides.opaque.has('');
}

/**
 * Refuses what only a symlink-resolving apply could do: an entry, whiteout or opaque marker
 * beneath a non-directory of a lower layer (e.g. `bin/foo` over a lower `bin -> usr/bin`).
 */
function checkSymlinkAncestors(nodes: Map<string, Node>, hides: Hides): void {
  const check = (path: string, layer: number, self: boolean, what: string): void => {
    for (let p = self ? path : splitPath(path).parent; p !== ''; p = splitPath(p).parent) {
      const node = nodes.get(p);
      if (node !== undefined && node.type !== 'directory' && node.layer <= layer) {
        throw new InvalidArchiveError(
          `${what} ${JSON.stringify(path)} lies beneath ${JSON.stringify(p)}, a ${node.type} of the same or a lower layer; flattening such layers is not supported (apply them instead)`,
          path,
        );
      }
    }
  };
  for (const [path, node] of nodes) check(path, node.layer, false, 'entry');
  for (const [path, layer] of hides.whiteouts) check(path, layer, false, 'whiteout of');
  for (const [path, layer] of hides.opaque) check(path, layer, true, 'opaque directory');
}

/** Sorted paths of the tree, after adding the directories that entries imply. */
function withImpliedDirectories(nodes: Map<string, Node>, epoch: number): string[] {
  for (const path of [...nodes.keys()]) {
    for (let p = splitPath(path).parent; p !== '' && !nodes.has(p); p = splitPath(p).parent) {
      nodes.set(p, {
        type: 'directory',
        layer: -1,
        header: { name: p, type: 'directory', mode: 0o755, uid: 0, gid: 0, uname: '', gname: '', size: 0, mtime: epoch, linkname: '', devmajor: 0, devminor: 0, xattrs: {}, offset: 0 },
      });
    }
  }
  return [...nodes.keys()].sort(comparePaths);
}

async function* emit(paths: readonly string[], nodes: Map<string, Node>, spool: Spool, disposed: () => boolean): AsyncGenerator<LayerEntry> {
  /** The first name each hardlinked content was written under. */
  const written = new Map<Content, string>();
  for (const path of paths) {
    if (disposed()) throw new Error('the flattened layers were disposed');
    const node = nodes.get(path)!;
    const h = node.header;
    const base = {
      path,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      uname: h.uname,
      gname: h.gname,
      mtime: h.mtime,
      xattrs: Object.keys(h.xattrs).length > 0 ? h.xattrs : undefined,
    };
    const content = node.content;
    if (content !== undefined) {
      const first = written.get(content);
      if (first !== undefined) {
        yield { ...base, type: 'hardlink', size: 0, linkname: first };
        continue;
      }
      written.set(content, path);
      yield content.size === 0
        ? { ...base, type: 'file', size: 0 }
        : { ...base, type: 'file', size: content.size, open: () => spool.read(content.offset, content.size) };
      continue;
    }
    switch (node.type) {
      case 'symlink':
        yield { ...base, type: 'symlink', size: 0, linkname: h.linkname };
        break;
      case 'char-device':
      case 'block-device':
        yield { ...base, type: node.type, size: 0, devmajor: h.devmajor, devminor: h.devminor };
        break;
      default:
        yield { ...base, type: node.type, size: 0 };
    }
  }
}
