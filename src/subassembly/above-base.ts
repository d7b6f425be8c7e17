import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import {
  OPAQUE_WHITEOUT,
  WHITEOUT_META_PREFIX,
  WHITEOUT_PREFIX,
  comparePaths,
  normalizeArchivePath,
  opaqueWhiteoutPath,
  readTar,
  splitPath,
  whiteoutPath,
  type LayerEntry,
  type LayerEntryType,
  type LayerSource,
} from '../layers/index.js';

/**
 * Squashing the layers above a base into one layer that still applies on top of that base.
 *
 * `flattenLayers` resolves whiteouts and opaque markers and drops them: right for a whole image,
 * whose lowest layer hides nothing, but a squash above a base must keep what the squashed layers
 * delete *from the base*. It also adds the directories its entries imply (mode 0755, owner 0:0),
 * which applied over a base would reset the base's own directories (`/tmp` 1777, `/root` 0700).
 *
 * So while the squashed layers stream into `flattenLayers`, a second tar reader notes their
 * markers and the paths they name (`BaseMarkers.scan`, with backpressure: it holds at most a
 * chunk or so); then `aboveBase` re-adds the markers that still matter and leaves out the implied
 * directories. For a base path `p`, with W the whited-out paths and O the opaque directories of
 * all the squashed layers (each hides everything below its layer, the base included), and F the
 * merged tree:
 * - `w` in W, not in F: a whiteout of `w`, unless an ancestor is already removed or opaque;
 * - `w` in W and a directory in F (deleted, then created again): an opaque marker on `w`;
 * - `w` in W and a non-directory in F: nothing (the entry replaces the base's);
 * - `o` in O and a directory in F: an opaque marker on `o` (an `o` not in F was removed by a
 *   whiteout of its own or an ancestor's, handled above).
 * Marker entries are empty regular files, mode 0, owner 0:0, mtime 0, as Docker writes them.
 */
export class BaseMarkers {
  readonly #whiteouts = new Set<string>();
  readonly #opaque = new Set<string>();
  /** Every path the squashed layers have an entry for: what is not here was implied. */
  readonly #named = new Set<string>();

  /**
   * Passes a layer's tar bytes through unchanged while a second tar reader notes its markers.
   * The reader keeps up chunk by chunk (the writer waits for it to drain), so nothing piles up.
   */
  async *scan(tar: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
    const pass = new PassThrough();
    const reading = this.#read(pass);
    reading.catch(() => undefined); // awaited below; an early exit abandons it on purpose
    try {
      for await (const chunk of tar) {
        if (!pass.write(chunk)) await Promise.race([once(pass, 'drain'), reading]);
        yield chunk;
      }
      pass.end();
      await reading;
    } finally {
      pass.destroy();
    }
  }

  async #read(tar: AsyncIterable<Uint8Array>): Promise<void> {
    for await (const { header } of readTar(tar)) {
      const path = normalizeArchivePath(header.name);
      if (path === '') continue;
      const { parent, base } = splitPath(path);
      if (!base.startsWith(WHITEOUT_PREFIX)) {
        this.#named.add(path);
      } else if (base === OPAQUE_WHITEOUT) {
        this.#opaque.add(parent);
      } else if (!base.startsWith(WHITEOUT_META_PREFIX)) {
        const name = base.slice(WHITEOUT_PREFIX.length);
        this.#whiteouts.add(parent === '' ? name : `${parent}/${name}`);
      }
    }
  }

  /**
   * The squashed tree as a layer over the base: `merged` (the output of `flattenLayers` over the
   * scanned layers, read here once for its metadata, then again for the layer) without implied
   * directories, with the markers above merged in, in `comparePaths` order.
   */
  async aboveBase(merged: LayerSource): Promise<LayerSource> {
    const wanted = new Set<string>();
    for (const path of [...this.#whiteouts, ...this.#opaque]) {
      for (let p = path; p !== ''; p = splitPath(p).parent) wanted.add(p);
    }
    const types = new Map<string, LayerEntryType>();
    for await (const entry of merged) if (wanted.has(entry.path)) types.set(entry.path, entry.type);
    const markers = this.#markers(types);
    const named = this.#named;
    return {
      async *[Symbol.asyncIterator]() {
        let next = 0;
        for await (const entry of merged) {
          while (next < markers.length && comparePaths(markers[next]!.path, entry.path) < 0) yield markers[next++]!;
          if (entry.type === 'directory' && !named.has(entry.path)) continue;
          yield entry;
        }
        while (next < markers.length) yield markers[next++]!;
      },
    };
  }

  #markers(types: ReadonlyMap<string, LayerEntryType>): LayerEntry[] {
    // The root is a directory whatever the entries say (an opaque root hides the whole base).
    const isDirectory = (path: string): boolean => path === '' || types.get(path) === 'directory';
    const opaque = new Set<string>();
    for (const path of [...this.#opaque, ...this.#whiteouts]) if (isDirectory(path)) opaque.add(path);
    const removed = new Set<string>();
    // Shallow paths first, so a removed ancestor is known before its descendants are considered.
    const candidates = [...this.#whiteouts].filter((path) => !types.has(path)).sort((a, b) => depth(a) - depth(b) || comparePaths(a, b));
    for (const path of candidates) {
      let covered = opaque.has('');
      for (let p = splitPath(path).parent; p !== '' && !covered; p = splitPath(p).parent) {
        covered = removed.has(p) || opaque.has(p) || (types.has(p) && !isDirectory(p));
      }
      if (!covered) removed.add(path);
    }
    const marker = (path: string): LayerEntry => ({ path, type: 'file', mode: 0, uid: 0, gid: 0, uname: '', gname: '', size: 0, mtime: 0 });
    return [...[...removed].map((p) => marker(whiteoutPath(p))), ...[...opaque].map((p) => marker(opaqueWhiteoutPath(p)))].sort((a, b) => comparePaths(a.path, b.path));
  }
}

function depth(path: string): number {
  let n = 0;
  for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) n++;
  return n;
}
