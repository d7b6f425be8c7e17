import { throwIfAborted } from '../errors.js';
import type { LayerEntryType } from './entry.js';
import { ArchiveLimitError, InvalidArchiveError } from './errors.js';
import { BLOCK_SIZE, decodeHeader, decodePaxRecords, decodeUtf8, isZeroBlock, paddingFor, paxNumber, type RawHeader } from './tar-format.js';

/** Caps on what an archive may make a reader do. Defaults: `DEFAULT_ARCHIVE_LIMITS`. */
export interface ArchiveLimits {
  /** Entries (files, directories, links, whiteouts...) in one archive. */
  readonly maxEntries: number;
  /** Declared content size of a single entry, in bytes. */
  readonly maxEntrySize: number;
  /** Bytes of uncompressed tar stream, headers and padding included (a decompression bomb cap). */
  readonly maxTotalBytes: number;
  /** Bytes of an entry name or link target. */
  readonly maxPathLength: number;
  /** Bytes of one PAX or GNU long-name header body. */
  readonly maxHeaderSize: number;
}

/** Generous for any real image (a full distribution is ~100k entries and a few GiB). */
export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = Object.freeze({
  maxEntries: 1_000_000,
  maxEntrySize: 64 * 1024 ** 3,
  maxTotalBytes: 256 * 1024 ** 3,
  maxPathLength: 4096,
  maxHeaderSize: 1024 * 1024,
});

/** A fully decoded entry header: PAX and GNU long-name records applied. */
export interface TarHeader {
  /** The name as recorded (not normalised; see `normalizeArchivePath`). */
  readonly name: string;
  readonly type: LayerEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly uname: string;
  readonly gname: string;
  readonly size: number;
  /** Seconds since the epoch; PAX times may carry a fraction or be negative. */
  readonly mtime: number;
  readonly linkname: string;
  readonly devmajor: number;
  readonly devminor: number;
  readonly xattrs: Readonly<Record<string, Uint8Array>>;
  /** Offset of the entry's first header block in the tar stream. */
  readonly offset: number;
}

export interface TarEntry {
  readonly header: TarHeader;
  /**
   * The entry's content (`header.size` bytes), to be read before asking for the next entry;
   * whatever is left unread is skipped. Chunks are views of the input: copy them to keep them.
   */
  readonly content: AsyncIterable<Uint8Array>;
}

export interface TarReadOptions {
  readonly limits?: Partial<ArchiveLimits> | undefined;
  readonly signal?: AbortSignal | undefined;
}

const EMPTY = new Uint8Array(0);

/** Pulls exact byte counts out of a chunked stream, counting everything against a limit. */
class ByteReader {
  readonly #iterator: AsyncIterator<Uint8Array>;
  readonly #limit: number;
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  /** Bytes handed out or skipped so far: the stream offset. */
  offset = 0;
  #pulled = 0;
  /** Named in a limit error, so the reader can say which entry was being read. */
  current: string | undefined;

  constructor(input: AsyncIterable<Uint8Array>, limit: number) {
    this.#iterator = input[Symbol.asyncIterator]();
    this.#limit = limit;
  }

  async #fill(): Promise<boolean> {
    for (;;) {
      const next = await this.#iterator.next();
      if (next.done) return false;
      if (next.value.byteLength === 0) continue;
      this.#pulled += next.value.byteLength;
      if (this.#pulled > this.#limit) throw new ArchiveLimitError('maxTotalBytes', this.#limit, this.current);
      this.#chunk = next.value;
      this.#pos = 0;
      return true;
    }
  }

  /**
   * Exactly `n` bytes if the current chunk holds them, else `undefined` (then `read`). Small
   * entries are read without an await: one per header and per file would cost more than the
   * parsing (a RUN's changes can be tens of thousands of files).
   */
  readBuffered(n: number): Uint8Array | undefined {
    if (this.#chunk.byteLength - this.#pos < n) return undefined;
    const out = this.#chunk.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes, or `undefined` at a clean end of stream; a partial read is an error. */
  async read(n: number): Promise<Uint8Array | undefined> {
    if (this.#pos === this.#chunk.byteLength && !(await this.#fill())) return undefined;
    const buffered = this.readBuffered(n);
    if (buffered !== undefined) return buffered;
    const out = new Uint8Array(n);
    let have = 0;
    while (have < n) {
      if (this.#pos === this.#chunk.byteLength && !(await this.#fill())) {
        throw new InvalidArchiveError(`unexpected end of archive (truncated after ${this.offset + have} bytes)`, this.current, this.offset);
      }
      const take = Math.min(n - have, this.#chunk.byteLength - this.#pos);
      out.set(this.#chunk.subarray(this.#pos, this.#pos + take), have);
      this.#pos += take;
      have += take;
    }
    this.offset += n;
    return out;
  }

  /** Up to `n` bytes in views of the input chunks, as they arrive. */
  async next(n: number): Promise<Uint8Array> {
    if (this.#pos === this.#chunk.byteLength && !(await this.#fill())) {
      throw new InvalidArchiveError(`unexpected end of archive (truncated after ${this.offset} bytes)`, this.current, this.offset);
    }
    const take = Math.min(n, this.#chunk.byteLength - this.#pos);
    const out = this.#chunk.subarray(this.#pos, this.#pos + take);
    this.#pos += take;
    this.offset += take;
    return out;
  }

  async skip(n: number): Promise<void> {
    if (n === 0 || this.readBuffered(n) !== undefined) return;
    let left = n;
    while (left > 0) left -= (await this.next(left)).byteLength;
  }

  /** Reads and discards the rest of the input (so a decompressor gets to check its trailer). */
  async drain(): Promise<void> {
    this.#pos = this.#chunk.byteLength;
    while (await this.#fill()) this.#pos = this.#chunk.byteLength;
  }

  async close(): Promise<void> {
    await this.#iterator.return?.();
  }
}

interface Overrides {
  pax: Map<string, Uint8Array> | undefined;
  longName: string | undefined;
  longLink: string | undefined;
}

/**
 * Reads a tar stream entry by entry: POSIX ustar, PAX (`x` and global `g` records, with binary
 * `SCHILY.xattr.*` values kept intact), GNU long names (`L`, `K`) and base-256 numbers, and
 * v7 archives. Sparse files, multi-volume and other exotic entry types fail with
 * `InvalidArchiveError`, as do checksum errors and truncation. Limits are enforced before
 * anything is buffered: a declared size is checked against `maxEntrySize` from the header alone.
 * After the end-of-archive blocks the rest of the input is read and discarded, so a compressed
 * stream's trailer (CRC, size) is always verified. Early exit (`break`) stops reading.
 */
export async function* readTar(input: AsyncIterable<Uint8Array>, options: TarReadOptions = {}): AsyncGenerator<TarEntry, void, undefined> {
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...options.limits };
  const reader = new ByteReader(input, limits.maxTotalBytes);
  const overrides: Overrides = { pax: undefined, longName: undefined, longLink: undefined };
  let globalPax = new Map<string, Uint8Array>();
  let entries = 0;
  try {
    for (;;) {
      throwIfAborted(options.signal);
      const at = reader.offset;
      const block = reader.readBuffered(BLOCK_SIZE) ?? (await reader.read(BLOCK_SIZE));
      // A stream that simply ends at a header boundary is accepted, as Go's reader does.
      if (block === undefined) return;
      if (isZeroBlock(block)) {
        await reader.drain();
        return;
      }
      const raw = decodeHeader(block, at);
      switch (raw.type) {
        case 'pax':
        case 'pax-global':
        case 'gnu-long-name':
        case 'gnu-long-link': {
          if (raw.size > limits.maxHeaderSize) throw new ArchiveLimitError('maxHeaderSize', limits.maxHeaderSize, overrides.longName ?? raw.name);
          const body = raw.size === 0 ? EMPTY : await reader.read(raw.size);
          if (body === undefined) throw new InvalidArchiveError('unexpected end of archive in an extended header', raw.name, at);
          await reader.skip(paddingFor(raw.size));
          if (raw.type === 'pax') overrides.pax = decodePaxRecords(body, at);
          else if (raw.type === 'pax-global') globalPax = new Map([...globalPax, ...decodePaxRecords(body, at)]);
          else {
            const end = body.indexOf(0);
            const text = decodeUtf8(end < 0 ? body : body.subarray(0, end), 'GNU long name', at);
            if (raw.type === 'gnu-long-name') overrides.longName = text;
            else overrides.longLink = text;
          }
          continue;
        }
        case 'gnu-volume':
          await reader.skip(raw.size + paddingFor(raw.size));
          continue;
        default:
          break;
      }

      const header = applyOverrides(raw, globalPax, overrides, at);
      overrides.pax = overrides.longName = overrides.longLink = undefined;
      reader.current = header.name;
      entries++;
      if (entries > limits.maxEntries) throw new ArchiveLimitError('maxEntries', limits.maxEntries, header.name);
      if (Buffer.byteLength(header.name) > limits.maxPathLength) throw new ArchiveLimitError('maxPathLength', limits.maxPathLength, header.name.slice(0, 200));
      if (Buffer.byteLength(header.linkname) > limits.maxPathLength) throw new ArchiveLimitError('maxPathLength', limits.maxPathLength, header.name);
      if (header.size > limits.maxEntrySize) throw new ArchiveLimitError('maxEntrySize', limits.maxEntrySize, header.name);

      // Only regular files carry content. GNU dumpdirs carry data that is skipped; every other
      // type is header-only whatever its size field says (as in Go's and GNU's readers).
      const dataSize = header.type === 'file' || raw.type === 'gnu-dumpdir' ? header.size : 0;
      let remaining = header.type === 'file' ? header.size : 0;
      // Content the current chunk holds whole is handed over as it is (no generator, no await).
      const whole = remaining > 0 ? reader.readBuffered(remaining) : undefined;
      let content: AsyncIterable<Uint8Array>;
      if (whole !== undefined) {
        remaining = 0;
        content = new SingleChunk(whole);
      } else {
        content = {
          async *[Symbol.asyncIterator]() {
            while (remaining > 0) {
              const chunk = await reader.next(remaining);
              remaining -= chunk.byteLength;
              yield chunk;
            }
          },
        };
      }
      yield { header: header.type === 'file' ? header : { ...header, size: 0 }, content };
      // Skip what the consumer left unread, then the padding.
      await reader.skip((header.type === 'file' ? remaining : dataSize) + paddingFor(dataSize));
      reader.current = undefined;
    }
  } finally {
    await reader.close();
  }
}

/** An async iterable of one chunk: no generator and no closure per file. */
class SingleChunk implements AsyncIterable<Uint8Array>, AsyncIterator<Uint8Array> {
  #chunk: Uint8Array | undefined;

  constructor(chunk: Uint8Array) {
    this.#chunk = chunk;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this;
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.#chunk;
    if (chunk === undefined) return Promise.resolve({ done: true, value: undefined });
    this.#chunk = undefined;
    return Promise.resolve({ done: false, value: chunk });
  }
}

function applyOverrides(raw: RawHeader, global: Map<string, Uint8Array>, overrides: Overrides, at: number): TarHeader {
  let type: LayerEntryType;
  switch (raw.type) {
    case 'gnu-dumpdir':
      type = 'directory';
      break;
    case 'unsupported':
    case 'pax':
    case 'pax-global':
    case 'gnu-long-name':
    case 'gnu-long-link':
    case 'gnu-volume': {
      const flag = raw.typeflag >= 0x20 && raw.typeflag < 0x7f ? `'${String.fromCharCode(raw.typeflag)}'` : `0x${raw.typeflag.toString(16)}`;
      throw new InvalidArchiveError(`unsupported entry type ${flag} (sparse, multi-volume and similar GNU extensions are not supported)`, raw.name, at);
    }
    default:
      type = raw.type;
  }
  const pax = overrides.pax === undefined ? global : global.size === 0 ? overrides.pax : new Map([...global, ...overrides.pax]);
  let { name, linkname, uname, gname, size, uid, gid, mtime } = raw;
  if (overrides.longName !== undefined) name = overrides.longName;
  if (overrides.longLink !== undefined) linkname = overrides.longLink;
  const xattrs: Record<string, Uint8Array> = {};
  for (const [key, value] of pax) {
    switch (key) {
      case 'path':
        name = decodeUtf8(value, 'PAX path', at);
        break;
      case 'linkpath':
        linkname = decodeUtf8(value, 'PAX linkpath', at);
        break;
      case 'uname':
        uname = decodeUtf8(value, 'PAX uname', at);
        break;
      case 'gname':
        gname = decodeUtf8(value, 'PAX gname', at);
        break;
      case 'size':
        size = paxNumber(value, key, at);
        break;
      case 'uid':
        uid = paxNumber(value, key, at);
        break;
      case 'gid':
        gid = paxNumber(value, key, at);
        break;
      case 'mtime':
        mtime = paxNumber(value, key, at, true);
        break;
      default:
        if (key.startsWith('SCHILY.xattr.')) xattrs[key.slice('SCHILY.xattr.'.length)] = value.slice();
        else if (key.startsWith('GNU.sparse.')) throw new InvalidArchiveError('sparse files are not supported', name, at);
      // Other keys (atime, ctime, comment, hdrcharset, vendor records) do not affect a layer.
    }
  }
  return { name, type, mode: raw.mode, uid, gid, uname, gname, size, mtime, linkname, devmajor: raw.devmajor, devminor: raw.devminor, xattrs, offset: at };
}
