import { constants } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { BigIntStats } from 'node:fs';
import { throwIfAborted } from '../errors.js';
import { comparePaths, type LayerEntry, type LayerEntryType, type LayerSource } from './entry.js';
import { LayerSourceError } from './errors.js';

/** How a source's modification times become the ones recorded in the layer. */
export type MtimePolicy =
  /** Every entry gets `sourceDateEpoch` (the default: reproducible whatever the checkout time). */
  | 'epoch'
  /** Times later than `sourceDateEpoch` are lowered to it, as BuildKit does with SOURCE_DATE_EPOCH. */
  | 'clamp'
  /** Times are kept as they are (not reproducible). */
  | 'keep';

export interface Owner {
  readonly uid: number;
  readonly gid: number;
  readonly uname?: string | undefined;
  readonly gname?: string | undefined;
}

/** Maps the owner a source found to the one recorded, e.g. for `COPY --chown` or id remapping. */
export type OwnerMapper = (owner: Owner, path: string) => Owner;

export interface NormalizeOptions {
  /** Seconds since the epoch. Default 0. */
  readonly sourceDateEpoch?: number | undefined;
  /** Default `'epoch'`. */
  readonly mtime?: MtimePolicy | undefined;
  /**
   * `'root'` (the default) records 0:0 with empty user and group names: host ids mean nothing
   * inside an image. `'keep'` records the ids found (names are left empty: resolving them would
   * read the host's passwd database). A function maps each owner.
   */
  readonly owner?: 'root' | 'keep' | OwnerMapper | undefined;
}

/** Applies `NormalizeOptions` to every entry of a source (sources that read a tree use it). */
export function normalizeEntries(source: LayerSource, options: NormalizeOptions = {}): LayerSource {
  const epoch = options.sourceDateEpoch ?? 0;
  if (!Number.isFinite(epoch)) throw new RangeError(`sourceDateEpoch must be a number of seconds, got ${epoch}`);
  const policy = options.mtime ?? 'epoch';
  const owner = options.owner ?? 'root';
  return {
    async *[Symbol.asyncIterator]() {
      for await (const entry of source) {
        const mtime = policy === 'epoch' ? epoch : policy === 'clamp' ? Math.min(entry.mtime, epoch) : entry.mtime;
        if (owner === 'keep') {
          // Owners as they are: at most the time changes (a RUN's changes can be tens of thousands of entries).
          yield mtime === entry.mtime ? entry : { ...entry, mtime };
          continue;
        }
        let ids: Owner;
        if (owner === 'root') ids = { uid: 0, gid: 0, uname: '', gname: '' };
        else ids = owner({ uid: entry.uid, gid: entry.gid, uname: entry.uname, gname: entry.gname }, entry.path);
        yield { ...entry, mtime, uid: ids.uid, gid: ids.gid, uname: ids.uname, gname: ids.gname };
      }
    },
  };
}

export interface DirectorySourceOptions extends NormalizeOptions {
  readonly signal?: AbortSignal | undefined;
}

/** Files are read in chunks of at most this size; files up to this size are read whole. */
const READ_CHUNK = 1024 * 1024;
/** How many lstat calls of one directory run at once (they go to libuv's thread pool). */
const STAT_CONCURRENCY = 32;
/**
 * Read-ahead of small files: a file costs four thread-pool round trips (open, read, fstat,
 * close), so reading them one after the other leaves the disk and the CPU idle. Up to this many
 * entries and bytes are read ahead of the consumer.
 */
const AHEAD_ENTRIES = 64;
const AHEAD_BYTES = 8 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The entries of a directory tree, without the root itself: a depth-first walk, each
 * directory's names in byte order (`comparePaths`), `lstat` (symlinks are recorded, never
 * followed). A file with several links in the tree is recorded once as a file, at its first path
 * in walk order; its other paths become hardlinks to that one (keyed by device and inode).
 * Sockets are skipped. Extended attributes are not read: Node has no API for them without a
 * native addon, so `xattrs` stays empty.
 *
 * Names that are not valid UTF-8 are refused with `LayerSourceError` rather than mangled.
 * The walk is lazy and can be iterated again (it walks the tree anew).
 */
export function directorySource(root: string, options: DirectorySourceOptions = {}): LayerSource {
  const raw: LayerSource = {
    [Symbol.asyncIterator]: () => readAhead(root, walk(root, '', new Map(), options.signal)),
  };
  return normalizeEntries(raw, options);
}

async function* walk(root: string, dir: string, links: Map<string, string>, signal: AbortSignal | undefined): AsyncGenerator<LayerEntry> {
  throwIfAborted(signal);
  const absDir = dir === '' ? root : join(root, dir);
  let rawNames: Buffer[];
  try {
    rawNames = await readdir(absDir, { encoding: 'buffer' });
  } catch (err) {
    throw new LayerSourceError(dir === '' ? '.' : dir, `cannot list the directory (${(err as Error).message})`, { cause: err });
  }
  const names = rawNames.map((raw) => {
    try {
      return utf8.decode(raw);
    } catch (err) {
      throw new LayerSourceError(`${dir}/${raw.toString('latin1')}`, 'the file name is not valid UTF-8', { cause: err });
    }
  });
  names.sort(comparePaths);

  for (let i = 0; i < names.length; i += STAT_CONCURRENCY) {
    const batch = names.slice(i, i + STAT_CONCURRENCY);
    const stats = await Promise.all(
      batch.map(async (name) => {
        const path = dir === '' ? name : `${dir}/${name}`;
        try {
          return await lstat(join(root, path), { bigint: true });
        } catch (err) {
          throw new LayerSourceError(path, `cannot stat (${(err as Error).message})`, { cause: err });
        }
      }),
    );
    for (let j = 0; j < batch.length; j++) {
      const path = dir === '' ? batch[j]! : `${dir}/${batch[j]!}`;
      const entry = await entryFor(root, path, stats[j]!, links);
      if (entry === undefined) continue;
      yield entry;
      if (entry.type === 'directory') yield* walk(root, path, links, signal);
    }
  }
}

function fileType(st: BigIntStats): LayerEntryType | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isFIFO()) return 'fifo';
  return undefined; // socket
}

/** Linux `major()`/`minor()` of a dev_t (glibc's encoding). */
function deviceNumbers(rdev: bigint): { devmajor: number; devminor: number } {
  const devmajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
  const devminor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
  return { devmajor, devminor };
}

async function entryFor(root: string, path: string, st: BigIntStats, links: Map<string, string>): Promise<LayerEntry | undefined> {
  const type = fileType(st);
  if (type === undefined) return undefined;
  const common = {
    path,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    // Keep sub-second precision for the clamp; the writer records whole seconds.
    mtime: Number(st.mtimeNs) / 1e9,
  };
  if (type !== 'directory' && st.nlink > 1n) {
    const key = `${st.dev}:${st.ino}`;
    const first = links.get(key);
    if (first !== undefined) return { ...common, type: 'hardlink', size: 0, linkname: first };
    links.set(key, path);
  }
  switch (type) {
    case 'file': {
      const size = Number(st.size);
      const abs = join(root, path);
      return size === 0 ? { ...common, type, size } : { ...common, type, size, open: () => readExactly(abs, path, size) };
    }
    case 'symlink': {
      const target = await readlink(join(root, path), { encoding: 'buffer' });
      let linkname: string;
      try {
        linkname = utf8.decode(target);
      } catch (err) {
        throw new LayerSourceError(path, 'the symlink target is not valid UTF-8', { cause: err });
      }
      return { ...common, type, size: 0, linkname };
    }
    case 'char-device':
    case 'block-device':
      return { ...common, type, size: 0, ...deviceNumbers(st.rdev) };
    default:
      return { ...common, type, size: 0 };
  }
}

/**
 * Passes entries through in order while reading the content of small files ahead (bounded by
 * AHEAD_ENTRIES and AHEAD_BYTES); large files are streamed when their turn comes.
 */
async function* readAhead(root: string, entries: AsyncGenerator<LayerEntry>): AsyncGenerator<LayerEntry> {
  const queue: { entry: LayerEntry; bytes: number }[] = [];
  let queuedBytes = 0;
  let done = false;
  try {
    for (;;) {
      while (!done && queue.length < AHEAD_ENTRIES && queuedBytes < AHEAD_BYTES) {
        const next = await entries.next();
        if (next.done) {
          done = true;
          break;
        }
        const entry = next.value;
        if (entry.type === 'file' && entry.size > 0 && entry.size <= READ_CHUNK) {
          const content = readWhole(join(root, entry.path), entry.path, entry.size);
          content.catch(() => undefined); // reported when the entry is consumed
          queue.push({ entry: { ...entry, open: () => once(content) }, bytes: entry.size });
          queuedBytes += entry.size;
        } else {
          queue.push({ entry, bytes: 0 });
        }
      }
      const head = queue.shift();
      if (head === undefined) return;
      queuedBytes -= head.bytes;
      yield head.entry;
    }
  } finally {
    await entries.return(undefined);
  }
}

async function* once(content: Promise<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield await content;
}

/**
 * A whole small file in one buffer. One byte more than expected is asked for, so a file that
 * grew is noticed without an fstat (three thread-pool round trips per file instead of four).
 */
async function readWhole(abs: string, path: string, size: number): Promise<Uint8Array> {
  const handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.allocUnsafeSlow(size + 1);
    let have = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, have, buffer.byteLength - have, have);
      if (bytesRead === 0) break;
      have += bytesRead;
      if (have > size) throw new LayerSourceError(path, `the file grew while it was read (more than ${size} bytes)`);
    }
    if (have < size) throw new LayerSourceError(path, `the file shrank while it was read (${have} of ${size} bytes)`);
    return buffer.subarray(0, size);
  } finally {
    await handle.close();
  }
}

/**
 * Reads exactly `size` bytes of a file in fresh buffers; fails if the file ends early or goes
 * on past `size` (GNU tar's "file changed as we read it", made an error).
 */
async function* readExactly(abs: string, path: string, size: number): AsyncGenerator<Uint8Array> {
  const handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    // One read is always in flight while the previous chunk is consumed (double buffering).
    let position = 0;
    const readAt = async (at: number): Promise<Uint8Array> => {
      const buffer = Buffer.allocUnsafeSlow(Math.min(size - at, READ_CHUNK));
      const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, at);
      if (bytesRead === 0) throw new LayerSourceError(path, `the file shrank while it was read (${at} of ${size} bytes)`);
      return bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead);
    };
    let pending: Promise<Uint8Array> | undefined = readAt(0);
    while (pending !== undefined) {
      const chunk = await pending;
      position += chunk.byteLength;
      pending = position < size ? readAt(position) : undefined;
      pending?.catch(() => undefined); // rethrown by the await above on the next turn
      yield chunk;
    }
    // One byte past the end must not exist: the file did not grow while it was read.
    const { bytesRead } = await handle.read(Buffer.alloc(1), 0, 1, size);
    if (bytesRead !== 0) throw new LayerSourceError(path, `the file grew while it was read (more than ${size} bytes)`);
  } finally {
    await handle.close();
  }
}
