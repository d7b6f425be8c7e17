import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, type Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError } from '../errors.js';
import { DigestingStream, layerMediaType, type Compression, type Descriptor, type Digest, type HashedBytes } from '../oci/index.js';
import { COMPRESSION_DEFAULTS, compressor } from './compression.js';
import type { LayerSource } from './entry.js';
import { tarChunks } from './tar-writer.js';

export interface BuildLayerOptions {
  /** Default `'gzip'`. */
  readonly compression?: Compression | undefined;
  /** gzip 1–9 (default 6), zstd 1–19 (default 3). */
  readonly level?: number | undefined;
  /** Compression threads. Default: every core. The blob does not depend on it. */
  readonly workers?: number | undefined;
  /** Media type family of the result. Default `'oci'`; Docker has gzip layers only. */
  readonly mediaTypeFamily?: 'oci' | 'docker' | undefined;
  readonly signal?: AbortSignal | undefined;
  /**
   * Makes a pass-through stream placed between the blob's digest and `destination` (an upload of
   * the blob while it is built); it must pass every byte on unchanged. It is given the blob's
   * running hash, final once every byte has passed: a tap that needs the digest at the end reads
   * it there instead of hashing the bytes again.
   */
  readonly tap?: ((blob: HashedBytes) => Transform) | undefined;
  /** Called as the archive grows, with the uncompressed bytes so far (once per chunk of about 256 KiB). */
  readonly onProgress?: ((uncompressedBytes: number) => void) | undefined;
}

/** What a layer build produced: everything a manifest and a config need. */
export interface BuiltLayer {
  /** Digest of the blob (the compressed bytes): the manifest's layer digest. */
  readonly digest: Digest;
  /** Digest of the uncompressed tar: the config's `rootfs.diff_ids` entry. */
  readonly diffId: Digest;
  /** Size of the blob in bytes. */
  readonly size: number;
  /** Size of the uncompressed tar in bytes. */
  readonly uncompressedSize: number;
  readonly mediaType: string;
}

/** The manifest descriptor of a built layer. */
export function layerDescriptor(layer: BuiltLayer): Descriptor {
  return { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
}

/**
 * Archives `source` as a tar, compresses it and writes the blob to `destination`, in one pass:
 * the tar bytes are hashed (diffID) on their way into the compressor and the compressed bytes
 * are hashed (digest) on their way out. Memory stays bounded whatever the layer size: every
 * stage applies backpressure. `destination` is ended when the blob is complete; on failure or
 * abort it is destroyed, and the promise rejects (`AbortedError` on abort).
 */
export async function buildLayer(source: LayerSource, destination: Writable, options: BuildLayerOptions = {}): Promise<BuiltLayer> {
  const compression = options.compression ?? COMPRESSION_DEFAULTS.compression;
  const mediaType = layerMediaType(compression, options.mediaTypeFamily ?? 'oci');
  const signal = options.signal;
  const chunks = tarChunks(source, { signal });
  const tar = Readable.from(options.onProgress === undefined ? chunks : reporting(chunks, options.onProgress), { objectMode: false, highWaterMark: 2 });
  const diff = new DigestingStream();
  try {
    if (compression === 'none') {
      // The blob is the tar: one hash serves as both digests.
      await pipeline(tar, diff, destination, signal === undefined ? {} : { signal });
      return { digest: diff.digest(), diffId: diff.digest(), size: diff.size, uncompressedSize: diff.size, mediaType };
    }
    const blob = new DigestingStream();
    const encoder = compressor(compression, { level: options.level, workers: options.workers });
    const tap = options.tap?.(blob);
    const streams = tap === undefined ? [tar, diff, encoder, blob, destination] : [tar, diff, encoder, blob, tap, destination];
    await pipeline(streams, signal === undefined ? {} : { signal });
    return { digest: blob.digest(), diffId: diff.digest(), size: blob.size, uncompressedSize: diff.size, mediaType };
  } catch (err) {
    if (signal?.aborted && !(err instanceof AbortedError)) throw new AbortedError('layer build aborted', { cause: signal.reason });
    throw err;
  }
}

async function* reporting(chunks: AsyncIterable<Uint8Array>, onProgress: (bytes: number) => void): AsyncGenerator<Uint8Array> {
  let total = 0;
  for await (const chunk of chunks) {
    total += chunk.byteLength;
    onProgress(total);
    yield chunk;
  }
}

/**
 * `buildLayer` into a file: written under a temporary name in the same directory and renamed
 * into place only once complete, so `path` never holds a partial blob.
 */
export async function buildLayerFile(source: LayerSource, path: string, options: BuildLayerOptions = {}): Promise<BuiltLayer> {
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.partial`);
  try {
    const layer = await buildLayer(source, createWriteStream(temp, { flags: 'wx' }), options);
    await rename(temp, path);
    return layer;
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
