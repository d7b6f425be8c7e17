import type { Readable } from 'node:stream';
import { throwIfAborted } from '../errors.js';
import { isDigest, parseDigest, VerifyingStream, type Digest } from './digest.js';
import { NotFoundError, SizeMismatchError } from './errors.js';
import { abortReason, openVerified, readAll } from './content.js';
import type { Descriptor } from './schemas.js';
import type { BlobContent, OperationOptions, TagLister, Target } from './store.js';

interface StoredBlob {
  readonly bytes: Uint8Array;
  readonly mediaType: string;
}

/**
 * A `Target` held in memory: for tests, for small intermediate graphs (an index assembled before
 * it is pushed), and as a cache. Every push is verified against its descriptor before it becomes
 * visible; fetched streams are verified too, so the store honours the same contract as the
 * others even when a caller passes a descriptor that disagrees with what is stored.
 */
export class MemoryStore implements Target, TagLister {
  readonly #blobs = new Map<Digest, StoredBlob>();
  readonly #tags = new Map<string, Descriptor>();

  async fetch(desc: Descriptor, options: OperationOptions = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    const blob = this.#blobs.get(parseDigest(desc.digest));
    if (blob === undefined) throw new NotFoundError(`blob ${desc.digest} in memory store`);
    if (blob.bytes.byteLength !== desc.size) throw new SizeMismatchError(desc.size, blob.bytes.byteLength, `blob ${desc.digest}`);
    const verifier = new VerifyingStream(desc, `blob ${desc.digest}`);
    verifier.end(blob.bytes);
    return verifier;
  }

  async exists(desc: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    return this.#blobs.get(parseDigest(desc.digest))?.bytes.byteLength === desc.size;
  }

  /**
   * Reads `content` fully (an opener is called once), verifies it against `desc` (or lets a
   * source's own verifier for `desc` do it), then stores it (idempotent).
   */
  async push(desc: Descriptor, content: BlobContent, options: OperationOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    let bytes: Uint8Array;
    try {
      // Stored only once the stream has ended without error: a failed verification throws here.
      bytes = await readAll(await openVerified(content, desc, options.signal), desc.size, `blob ${desc.digest}`);
    } catch (err) {
      throw abortReason(err, options.signal);
    }
    this.#blobs.set(parseDigest(desc.digest), { bytes, mediaType: desc.mediaType });
  }

  /**
   * Resolves a tag, or a digest string of content the store holds (its descriptor then carries
   * the media type it was pushed with).
   */
  async resolve(reference: string, options: OperationOptions = {}): Promise<Descriptor> {
    throwIfAborted(options.signal);
    const tagged = this.#tags.get(reference);
    if (tagged !== undefined) return tagged;
    if (isDigest(reference)) {
      const blob = this.#blobs.get(reference);
      if (blob !== undefined) return { mediaType: blob.mediaType, digest: reference, size: blob.bytes.byteLength };
    }
    throw new NotFoundError(`reference ${JSON.stringify(reference)} in memory store`);
  }

  /** Points `reference` at `desc`, whose content must already be in the store. */
  async tag(desc: Descriptor, reference: string, options: OperationOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    if (!(await this.exists(desc))) throw new NotFoundError(`blob ${desc.digest} in memory store (cannot tag ${JSON.stringify(reference)})`);
    this.#tags.set(reference, desc);
  }

  async tags(options: OperationOptions = {}): Promise<string[]> {
    throwIfAborted(options.signal);
    return [...this.#tags.keys()].sort();
  }

  /** How many blobs the store holds (handy in tests and for cache accounting). */
  get size(): number {
    return this.#blobs.size;
  }
}
