import { availableParallelism } from 'node:os';
import { Duplex, PassThrough, Readable, pipeline, type Transform } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { CompressStream, DecompressStream } from 'zstd-napi';
import { StevedoreError } from '../errors.js';
import type { Compression } from '../oci/index.js';
import { CompressionError } from './errors.js';
import { GzipEncoder } from './gzip.js';

/** Defaults of the compression options, in one place. */
export const COMPRESSION_DEFAULTS: { readonly compression: Compression; readonly gzipLevel: number; readonly zstdLevel: number } = Object.freeze({
  compression: 'gzip',
  gzipLevel: 6,
  zstdLevel: 3,
});

/** The most compression threads one stream uses. */
export const MAX_WORKERS = 64;

/** The default worker count for compression: every core. */
export function defaultWorkers(): number {
  return availableParallelism();
}

export interface CompressorOptions {
  /** gzip 1–9 (default 6), zstd 1–19 (default 3); ignored for `none`. */
  readonly level?: number | undefined;
  /** Threads compressing at once. Default: every core. The output does not depend on it. */
  readonly workers?: number | undefined;
}

/**
 * A compressing transform whose output depends only on its input and level, never on the worker
 * count or on how the input was chunked. gzip: see gzip.ts. zstd: zstd's own multithreading,
 * always with at least one worker thread, because zstd guarantees identical output for any
 * `nbWorkers >= 1` (but not between 0 and 1); content checksum on, as the zstd CLI writes it.
 * The calling thread hands input to zstd's threads and blocks only when they are all busy, that
 * is when compression is the bottleneck anyway (running the stream in a worker thread instead
 * was measured: no faster, more copies).
 */
export function compressor(compression: Compression, options: CompressorOptions = {}): Transform {
  // More threads than this only cost memory: the output is the same for any count.
  const workers = Math.min(MAX_WORKERS, Math.max(1, Math.floor(options.workers ?? defaultWorkers())));
  switch (compression) {
    case 'gzip':
      return new GzipEncoder({ level: options.level ?? COMPRESSION_DEFAULTS.gzipLevel, workers });
    case 'zstd': {
      const level = options.level ?? COMPRESSION_DEFAULTS.zstdLevel;
      if (!Number.isInteger(level) || level < 1 || level > 19) throw new RangeError(`zstd level must be an integer from 1 to 19, got ${level}`);
      return new CompressStream({ compressionLevel: level, nbWorkers: workers, checksumFlag: true });
    }
    case 'none':
      return new PassThrough();
  }
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** Recognises gzip and zstd by their magic bytes; anything else is taken as uncompressed. */
export function sniffCompression(head: Uint8Array): Compression {
  if (GZIP_MAGIC.every((b, i) => head[i] === b)) return 'gzip';
  if (ZSTD_MAGIC.every((b, i) => head[i] === b)) return 'zstd';
  return 'none';
}

/** Errors thrown by the compressed input itself, not by the decompressor. */
const sourceErrors = new WeakSet<object>();

async function* markSourceErrors(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  try {
    yield* source;
  } catch (err) {
    if (typeof err === 'object' && err !== null) sourceErrors.add(err);
    throw err;
  }
}

/** Whether `err` came from the input given to `decompress` (a network or disk error, say). */
export function isInputError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && sourceErrors.has(err);
}

function toCompressionError(err: unknown, compression: Compression): unknown {
  if (err instanceof StevedoreError || isInputError(err)) return err;
  if ((err as { code?: unknown } | null)?.code === 'ABORT_ERR') return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CompressionError(compression, message, { cause: err });
}

/**
 * Decompresses a stream of bytes. With `'auto'` (the default) the compression is recognised by
 * its magic bytes. gzip accepts several concatenated members (pigz and parallel writers produce
 * them). Corrupt or truncated input fails with `CompressionError`; errors of the input itself
 * pass through unchanged.
 */
export async function* decompress(input: AsyncIterable<Uint8Array>, compression: Compression | 'auto' = 'auto'): AsyncGenerator<Uint8Array, void, undefined> {
  const iterator = markSourceErrors(input)[Symbol.asyncIterator]();
  let kind: Compression;
  const head: Uint8Array[] = [];
  if (compression === 'auto') {
    // Gather the 4 bytes the magic numbers need (an empty stream is an empty tar: none).
    let have = 0;
    while (have < 4) {
      const next = await iterator.next();
      if (next.done) break;
      head.push(next.value);
      have += next.value.byteLength;
    }
    kind = sniffCompression(head.length === 1 ? head[0]! : Buffer.concat(head));
  } else {
    kind = compression;
  }
  const rest = (async function* () {
    try {
      yield* head;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      // Stopping early (an error downstream, a consumer that breaks) releases the input.
      await iterator.return?.(undefined);
    }
  })();
  if (kind === 'none') {
    yield* rest;
    return;
  }
  // gzip decompresses up to 4 MiB ahead of the consumer (zlib's stream options include the
  // Transform's, which its type leaves out), so inflating in the thread pool overlaps with an
  // extraction that writes files on this thread: Debian's base layer 1.8 s -> 1.4 s.
  const engine: Transform = kind === 'gzip' ? createGunzip({ chunkSize: 128 * 1024, readableHighWaterMark: 4 * 1024 * 1024 } as ZlibOptions) : new DecompressStream();
  const source = Readable.from(rest, { objectMode: false });
  pipeline(source, engine, () => undefined);
  try {
    for await (const chunk of engine) yield chunk as Uint8Array;
  } catch (err) {
    throw toCompressionError(err, kind);
  } finally {
    source.destroy();
    engine.destroy();
  }
}

/**
 * `decompress` as a Node duplex stream, for callers that pipe: bytes in, tar bytes out. The
 * compression is named or sniffed (`'auto'`).
 */
export function decompressor(compression: Compression | 'auto' = 'auto'): Duplex {
  return Duplex.from(async function* (source: AsyncIterable<Uint8Array>) {
    yield* decompress(source, compression);
  });
}
