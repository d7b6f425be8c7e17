import { Transform, type TransformCallback } from 'node:stream';
import { crc32 } from 'node:zlib';
import { sharedDeflatePool, type DeflatePool, type DeflateResult } from './deflate-pool.js';

/**
 * Parallel, deterministic gzip: pigz's method on worker threads.
 *
 * The input is cut into fixed-size blocks by byte offset. Each block is raw-deflated on its own,
 * primed with the 32 KiB of input before it as the dictionary unless those look random (so the
 * ratio stays within a fraction of a percent of single-stream gzip), and ended with a sync flush
 * (the last one with Z_FINISH). The deflate streams concatenate into one valid stream behind a fixed 10-byte header
 * (no name, mtime 0, OS 3 = Unix, XFL as zlib sets it), and the trailer carries the CRC-32 of all
 * input and its size mod 2^32. Random-looking stretches (compressed or encrypted files) are not
 * deflated but written as stored blocks, by a test on the bytes themselves (deflate-pool.ts):
 * deflating them cost as much CPU as text and saved nothing. Block boundaries depend only on
 * byte offsets and every decision only on a block's bytes and the 32 KiB before it, so the
 * output is the same for any worker count and any input chunking. An input shorter than one
 * block with no random stretch of 32 KiB gives exactly the bytes of
 * `zlib.gzipSync(input, { level })`. The bytes do depend on the deflate implementation: a Node
 * release that changes its bundled zlib can change gzip digests (as for every gzip-based
 * builder); diffIDs never change.
 *
 * Single-stream deflate of 1 MiB blocks of the benchmark tar (bench/layers.ts, 2-core machine,
 * three runs): node:zlib 26 MB/s at level 6 and 93-98 MB/s at level 1; fflate 16-17 MB/s and
 * 29-47 MB/s. node:zlib (Chromium's zlib with SIMD) is kept.
 */

/** Bytes of input per block: large enough that a block's fixed costs vanish, small enough to spread. */
export const GZIP_BLOCK_SIZE = 1024 * 1024;
/** Deflate's window: the dictionary a block is primed with. */
const WINDOW = 32 * 1024;

export interface GzipEncoderOptions {
  /** 1 (fastest) to 9 (smallest). Default 6, gzip's default. */
  readonly level?: number | undefined;
  /** Threads to compress on. Default: the pool's worker count. The bytes do not depend on it. */
  readonly workers?: number | undefined;
  /** For tests; the default is the shared pool. */
  readonly pool?: DeflatePool | undefined;
  /** For tests; the default is GZIP_BLOCK_SIZE. */
  readonly blockSize?: number | undefined;
}

interface InFlight {
  readonly promise: Promise<DeflateResult>;
  result: DeflateResult | undefined;
}

/** The 10-byte gzip header zlib writes for `level` (RFC 1952; XFL 2 = best, 4 = fastest). */
export function gzipHeader(level: number): Uint8Array {
  const xfl = level === 9 ? 2 : level < 2 ? 4 : 0;
  return Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3);
}

export class GzipEncoder extends Transform {
  readonly #level: number;
  readonly #pool: DeflatePool;
  readonly #blockSize: number;
  /** Threads this stream compresses on. */
  readonly #workers: number;
  /** Blocks handed out and not yet emitted: two per thread, so none waits for the next. */
  readonly #maxInFlight: number;
  readonly #inFlight: InFlight[] = [];
  /** Blocks back from the workers, refilled rather than allocating one per block. */
  readonly #free: ArrayBuffer[] = [];
  #block: Uint8Array;
  #filled = 0;
  #previousTail: Uint8Array | null = null;
  #crc = 0;
  #size = 0;

  constructor(options: GzipEncoderOptions = {}) {
    super();
    const level = options.level ?? 6;
    if (!Number.isInteger(level) || level < 1 || level > 9) throw new RangeError(`gzip level must be an integer from 1 to 9, got ${level}`);
    const workers = options.workers ?? 0;
    this.#level = level;
    this.#pool = options.pool ?? sharedDeflatePool();
    if (workers > 0) this.#pool.ensure(workers);
    this.#blockSize = options.blockSize ?? GZIP_BLOCK_SIZE;
    this.#workers = Math.max(1, workers > 0 ? workers : this.#pool.size);
    this.#maxInFlight = 2 * this.#workers;
    this.#block = new Uint8Array(this.#blockSize);
    this.push(gzipHeader(level));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#write(chunk).then(() => callback(), callback);
  }

  async #write(chunk: Uint8Array): Promise<void> {
    this.#crc = crc32(chunk, this.#crc);
    this.#size = (this.#size + chunk.byteLength) % 2 ** 32;
    let offset = 0;
    while (offset < chunk.byteLength) {
      // A full block is sent only once more input exists, so the last block is always the
      // one that gets Z_FINISH, whatever the chunking. With enough blocks out, wait: this
      // thread fills the next block while the workers compress, and memory stays bounded.
      if (this.#filled === this.#blockSize) {
        await this.#drain(this.#maxInFlight);
        this.#dispatch(false);
      }
      const n = Math.min(chunk.byteLength - offset, this.#blockSize - this.#filled);
      this.#block.set(chunk.subarray(offset, offset + n), this.#filled);
      this.#filled += n;
      offset += n;
    }
    await this.#drain(Number.POSITIVE_INFINITY);
  }

  override _flush(callback: TransformCallback): void {
    this.#dispatch(true);
    this.#drain(1).then(() => {
      const trailer = new Uint8Array(8);
      const view = new DataView(trailer.buffer);
      view.setUint32(0, this.#crc >>> 0, true);
      view.setUint32(4, this.#size, true);
      this.push(trailer);
      callback();
    }, callback);
  }

  #dispatch(last: boolean): void {
    const input = this.#block.subarray(0, this.#filled);
    const dictionary = this.#previousTail;
    this.#previousTail = input.byteLength >= WINDOW ? input.slice(input.byteLength - WINDOW) : joinTail(dictionary, input);
    const flight: InFlight = {
      promise: this.#pool.run({ input, dictionary, level: this.#level, last }, this.#workers),
      result: undefined,
    };
    flight.promise.then(
      (result) => (flight.result = result),
      () => undefined, // reported where the flight is awaited, in order
    );
    this.#inFlight.push(flight);
    if (!last) {
      const reuse = this.#free.pop();
      this.#block = reuse === undefined ? new Uint8Array(this.#blockSize) : new Uint8Array(reuse);
      this.#filled = 0;
    }
  }

  /** Emits finished blocks in order, waiting as needed until fewer than `below` are in flight. */
  async #drain(below: number): Promise<void> {
    for (;;) {
      const head = this.#inFlight[0];
      if (head === undefined) return;
      if (head.result === undefined && this.#inFlight.length < below) return;
      const { output, input } = head.result ?? (await head.promise);
      this.#inFlight.shift();
      if (input.byteLength === this.#blockSize) this.#free.push(input);
      if (output.byteLength > 0) this.push(output);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Blocks still in the pool finish there; their results are dropped with this stream.
    for (const flight of this.#inFlight.splice(0)) flight.promise.catch(() => undefined);
    callback(error);
  }
}

/** The last WINDOW bytes of `previous` followed by `input` (for blocks shorter than the window). */
function joinTail(previous: Uint8Array | null, input: Uint8Array): Uint8Array {
  const total = (previous?.byteLength ?? 0) + input.byteLength;
  const keep = Math.min(total, WINDOW);
  const out = new Uint8Array(keep);
  const fromInput = Math.min(input.byteLength, keep);
  const fromPrevious = keep - fromInput;
  if (previous !== null && fromPrevious > 0) out.set(previous.subarray(previous.byteLength - fromPrevious), 0);
  out.set(input.subarray(input.byteLength - fromInput), fromPrevious);
  return out;
}
