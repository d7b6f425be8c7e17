import { addAbortSignal, pipeline, Readable } from 'node:stream';
import { AbortedError } from '../errors.js';
import { isVerifyingStreamFor, verifyBytes, VerifyingStream } from './digest.js';
import { MAX_DOCUMENT_SIZE, parseImageIndex, parseImageManifest, type ParsedManifest } from './document.js';
import { InvalidDocumentError, TooLargeError } from './errors.js';
import { isIndexMediaType, isManifestMediaType } from './mediatypes.js';
import type { Descriptor } from './schemas.js';
import { isBlobOpener, type BlobContent, type BlobOpener, type Fetcher, type OperationOptions } from './store.js';

/** Helpers shared by the stores and `copyGraph`: content as streams, small blobs as bytes. */

/**
 * Any `BlobContent` as a Node stream of bytes (a `Uint8Array` becomes a one-chunk stream). An
 * opener is called once, when the stream is first read; `openReadable` calls it at once instead,
 * so that its failure surfaces as a rejection and its stream keeps its own type.
 */
export function toReadable(content: BlobContent): Readable {
  if (content instanceof Readable) return content;
  // Readable.from() on a Uint8Array would iterate it byte by byte: wrap it in an array.
  if (content instanceof Uint8Array) return Readable.from([content], { objectMode: false });
  if (isBlobOpener(content)) return Readable.from(openLazily(content), { objectMode: false });
  return Readable.from(content, { objectMode: false });
}

async function* openLazily(open: BlobOpener): AsyncGenerator<Uint8Array> {
  // Delegating with yield* hands a destroy of the outer stream on to the opened one.
  yield* toReadable(await open()) as AsyncIterable<Uint8Array>;
}

/** Opens `content` now: an opener is called for a fresh stream, a body is wrapped as a stream. */
export async function openReadable(content: BlobContent): Promise<Readable> {
  return toReadable(isBlobOpener(content) ? await content() : content);
}

/**
 * `content` flowing through a `VerifyingStream` for `desc`: the returned stream errors (with
 * `SizeMismatchError`, `DigestMismatchError`, the source's error, or an abort) instead of ending
 * cleanly when anything is wrong, and destroying it stops the source.
 *
 * Content that is already an unread `VerifyingStream` for the same digest and size (what every
 * store's `fetch` returns) is returned as it is rather than hashed a second time: it gives the
 * same guarantee. Either way the consumer commits only after the stream ended without error.
 */
export function verifiedReadable(content: BlobContent, desc: Descriptor, signal?: AbortSignal): Readable {
  const source = toReadable(content);
  if (isVerifyingStreamFor(source, desc)) {
    if (signal !== undefined) addAbortSignal(signal, source);
    return source;
  }
  const verifier = new VerifyingStream(desc, `blob ${desc.digest}`);
  // pipeline forwards an error of either stream to the other; the consumer sees it on `verifier`.
  pipeline(source, verifier, () => {});
  if (signal !== undefined) addAbortSignal(signal, verifier);
  return verifier;
}

/** `openReadable`, then `verifiedReadable`: an opener is called now and its stream verified. */
export async function openVerified(content: BlobContent, desc: Descriptor, signal?: AbortSignal): Promise<Readable> {
  return verifiedReadable(await openReadable(content), desc, signal);
}

/**
 * Maps the `AbortError` a stream fails with when its signal fires to Stevedore's typed
 * `AbortedError`; any other error is returned unchanged.
 */
export function abortReason(err: unknown, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted && !(err instanceof AbortedError)) return new AbortedError('operation aborted', { cause: signal.reason });
  return err;
}

/**
 * Reads a whole stream into memory, refusing (with `TooLargeError`) as soon as more than
 * `limit` bytes have arrived; the stream is destroyed then, so the producer stops.
 */
export async function readAll(source: AsyncIterable<Uint8Array>, limit: number, what = 'content'): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.byteLength;
    // Leaving the loop early (throw) calls return() on the iterator, which destroys a Readable.
    if (total > limit) throw new TooLargeError(limit, what);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

export interface FetchAllOptions extends OperationOptions {
  /** The most bytes to hold in memory. Default: `MAX_DOCUMENT_SIZE` (4 MiB). */
  readonly limit?: number;
}

/**
 * Fetches a whole blob into memory (manifests, configs): refused before any byte moves when the
 * descriptor announces more than `limit`, and verified against size and digest afterwards even
 * if the store already did (a third-party store may not).
 */
export async function fetchAll(fetcher: Fetcher, desc: Descriptor, options: FetchAllOptions = {}): Promise<Uint8Array> {
  const limit = options.limit ?? MAX_DOCUMENT_SIZE;
  const what = `blob ${desc.digest} (${desc.mediaType})`;
  if (desc.size > limit) throw new TooLargeError(limit, `${what} of ${desc.size} bytes`);
  const stream = await fetcher.fetch(desc, options.signal === undefined ? {} : { signal: options.signal });
  const bytes = await readAll(stream, limit, what);
  verifyBytes(bytes, desc, what);
  return bytes;
}

/**
 * Fetches and parses the manifest or index `desc` points at. Besides the schema, it checks
 * what containerd checks: the media type the document declares (when it declares one) is the
 * one its descriptor announced, so a manifest cannot pass for an index or the other way round.
 */
export async function fetchManifest(fetcher: Fetcher, desc: Descriptor, options: OperationOptions = {}): Promise<ParsedManifest> {
  if (!isManifestMediaType(desc.mediaType)) {
    throw new InvalidDocumentError(`manifest ${desc.digest}`, `media type ${JSON.stringify(desc.mediaType)} is not an image manifest or index`);
  }
  const bytes = await fetchAll(fetcher, desc, options);
  return parseManifestFor(bytes, desc);
}

/** Parses bytes already fetched for `desc` with the checks of `fetchManifest`. */
export function parseManifestFor(bytes: Uint8Array, desc: Descriptor): ParsedManifest {
  const index = isIndexMediaType(desc.mediaType);
  const what = `${index ? 'index' : 'manifest'} ${desc.digest}`;
  let parsed: ParsedManifest;
  try {
    parsed = index
      ? { kind: 'index', ...parseImageIndex(bytes, desc, desc.mediaType) }
      : { kind: 'image', ...parseImageManifest(bytes, desc, desc.mediaType) };
  } catch (err) {
    // Name the document by digest: "invalid manifest sha256:…: config: Required".
    if (err instanceof InvalidDocumentError) throw new InvalidDocumentError(what, err.reason, { cause: err });
    throw err;
  }
  const declared = parsed.value.mediaType;
  if (declared !== undefined && declared !== desc.mediaType) {
    throw new InvalidDocumentError(what, `declares mediaType ${JSON.stringify(declared)} but its descriptor says ${JSON.stringify(desc.mediaType)}`);
  }
  return parsed;
}
