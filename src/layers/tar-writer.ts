import { throwIfAborted } from '../errors.js';
import { isNormalizedPath, type LayerSource } from './entry.js';
import { LayerSourceError } from './errors.js';
import { BLOCK_SIZE, END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar-format.js';

export interface TarWriteOptions {
  readonly signal?: AbortSignal | undefined;
}

/** Output chunks are about this big: large enough that per-chunk costs downstream vanish. */
const CHUNK_SIZE = 256 * 1024;
/** Content chunks at least this big are passed through as they are instead of being copied. */
const PASS_THROUGH = 64 * 1024;

const ZERO_PADDING = new Uint8Array(BLOCK_SIZE);

/**
 * Coalesces the many small pieces of a tar stream (512-byte headers, small files, padding) into
 * chunks of about `CHUNK_SIZE`, so hashing and compressing see few, large chunks. `add` returns
 * nothing in the common case (the piece was buffered), so the writer allocates nothing per entry.
 */
class ChunkBatcher {
  #buffer: Uint8Array = Buffer.allocUnsafeSlow(CHUNK_SIZE);
  #used = 0;

  /** Adds bytes; returns the chunks that are ready to go out, if any. */
  add(bytes: Uint8Array): Uint8Array[] | undefined {
    if (bytes.byteLength >= PASS_THROUGH) {
      const pending = this.flush();
      return pending === undefined ? [bytes] : [pending, bytes];
    }
    if (this.#used + bytes.byteLength < CHUNK_SIZE) {
      this.#buffer.set(bytes, this.#used);
      this.#used += bytes.byteLength;
      return undefined;
    }
    const ready: Uint8Array[] = [];
    let offset = 0;
    while (offset < bytes.byteLength) {
      const n = Math.min(bytes.byteLength - offset, CHUNK_SIZE - this.#used);
      this.#buffer.set(bytes.subarray(offset, offset + n), this.#used);
      this.#used += n;
      offset += n;
      if (this.#used === CHUNK_SIZE) ready.push(this.flush()!);
    }
    return ready;
  }

  /** What is buffered, as one chunk (undefined when empty). */
  flush(): Uint8Array | undefined {
    if (this.#used === 0) return undefined;
    const out = this.#buffer.subarray(0, this.#used);
    // The consumer keeps the chunk: start a fresh buffer rather than overwrite it.
    this.#buffer = Buffer.allocUnsafeSlow(CHUNK_SIZE); // every byte handed out is written first
    this.#used = 0;
    return out;
  }
}

/**
 * Serialises a layer source as a tar stream, entry by entry in the order the source yields
 * them. The bytes depend only on the entries (see tar-format.ts), so a deterministic source
 * gives a deterministic tar. A file whose content is not exactly `size` bytes fails the stream
 * with `LayerSourceError`: a half-written entry would corrupt every entry after it.
 */
export async function* tarChunks(source: LayerSource, options: TarWriteOptions = {}): AsyncGenerator<Uint8Array, void, undefined> {
  const batcher = new ChunkBatcher();
  const headerBlock = new Uint8Array(BLOCK_SIZE); // copied into the batch before it is reused
  for await (const entry of source) {
    throwIfAborted(options.signal);
    if (!isNormalizedPath(entry.path)) throw new LayerSourceError(entry.path, 'the entry path is not normalised (relative, no "", "." or ".." components)');
    if (!Number.isSafeInteger(entry.size) || entry.size < 0) throw new LayerSourceError(entry.path, `invalid size ${entry.size}`);
    if (!Number.isSafeInteger(entry.uid) || entry.uid < 0 || !Number.isSafeInteger(entry.gid) || entry.gid < 0) {
      throw new LayerSourceError(entry.path, `invalid owner ${entry.uid}:${entry.gid}`);
    }
    if ((entry.type === 'symlink' || entry.type === 'hardlink') && !entry.linkname) {
      throw new LayerSourceError(entry.path, `a ${entry.type} needs a link target`);
    }
    const headerReady = batcher.add(encodeHeader(entry, headerBlock));
    if (headerReady !== undefined) yield* headerReady;
    if (entry.type !== 'file' || entry.size === 0) continue;
    if (entry.open === undefined) throw new LayerSourceError(entry.path, 'a non-empty file has no content');

    let written = 0;
    for await (const chunk of entry.open()) {
      written += chunk.byteLength;
      if (written > entry.size) throw new LayerSourceError(entry.path, `the file grew while it was read (more than ${entry.size} bytes)`);
      const ready = batcher.add(chunk);
      if (ready !== undefined) yield* ready;
    }
    if (written !== entry.size) throw new LayerSourceError(entry.path, `the file shrank while it was read (${written} of ${entry.size} bytes)`);
    const padding = paddingFor(entry.size);
    if (padding > 0) {
      const ready = batcher.add(ZERO_PADDING.subarray(0, padding));
      if (ready !== undefined) yield* ready;
    }
  }
  throwIfAborted(options.signal);
  const ready = batcher.add(END_OF_ARCHIVE);
  if (ready !== undefined) yield* ready;
  const last = batcher.flush();
  if (last !== undefined) yield last;
}
