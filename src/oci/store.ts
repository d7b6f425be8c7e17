import type { Readable } from 'node:stream';
import type { Descriptor } from './schemas.js';

/**
 * Content stores, after oras-go: one-method interfaces composed into bigger ones. A registry
 * repository, an OCI layout and an in-memory store all implement `Target`, so one `copyGraph`
 * moves content between any two of them.
 *
 * Contract for every implementation:
 * - `fetch` returns a stream that is verified against `desc.size` and `desc.digest` at EOF
 *   (it errors instead of ending cleanly on a mismatch).
 * - `push` verifies the content against the descriptor before it becomes visible; a failed or
 *   aborted push leaves nothing behind.
 * - `push` accepts every form of `BlobContent`. Given an opener, it may call it again after a
 *   failure (a registry upload cut mid-stream), but each retry starts from a fresh stream: a
 *   whole upload again, or the registry's offset reached by skipping bytes of the new stream,
 *   never the rest of a stream already half read. A pusher destroys a stream it opened and
 *   abandons.
 * - A pusher may skip its own hashing when handed a stream that already verifies the same
 *   descriptor (`isVerifyingStreamFor`); it then commits only once that stream has ended
 *   without error, so a corrupt source still never produces a stored blob.
 */

export interface OperationOptions {
  readonly signal?: AbortSignal;
}

/** Content that can be read once: bytes in memory, a Node stream, or any async iterable of bytes. */
export type BlobBody = Readable | Uint8Array | AsyncIterable<Uint8Array>;

/**
 * Content that can be opened again: each call returns a fresh body from the first byte (e.g.
 * `() => source.fetch(desc)`). With it, a destination can retry a failed transfer; with a
 * one-shot stream only what it still holds in memory can be sent again.
 */
export type BlobOpener = () => Promise<BlobBody> | BlobBody;

/** What `Pusher.push` accepts: a body to read once, or an opener to (re)open on demand. */
export type BlobContent = BlobBody | BlobOpener;

export interface Fetcher {
  fetch(desc: Descriptor, options?: OperationOptions): Promise<Readable>;
}

export interface Pusher {
  push(desc: Descriptor, content: BlobContent, options?: OperationOptions): Promise<void>;
}

export interface Exister {
  exists(desc: Descriptor, options?: OperationOptions): Promise<boolean>;
}

export interface Resolver {
  /** Resolves a tag (or a digest string) to the descriptor of the manifest it names. */
  resolve(reference: string, options?: OperationOptions): Promise<Descriptor>;
}

export interface Tagger {
  tag(desc: Descriptor, reference: string, options?: OperationOptions): Promise<void>;
}

export interface ReadOnlyStorage extends Fetcher, Exister {}
export interface Storage extends ReadOnlyStorage, Pusher {}
export interface ReadOnlyTarget extends ReadOnlyStorage, Resolver {}
export interface Target extends Storage, Resolver, Tagger {}

/** Optional capability: list the tags a target holds. */
export interface TagLister {
  tags(options?: OperationOptions): Promise<string[]>;
}

/**
 * Optional capability of registry targets: make a blob that lives in another repository of the
 * same registry appear in this one without moving its bytes. Resolves `true` when the blob was
 * mounted, `false` when the registry declined (the caller then pushes normally).
 */
export interface Mounter {
  mount(desc: Descriptor, fromRepository: string, options?: OperationOptions): Promise<boolean>;
}

export function isTagLister(target: unknown): target is TagLister {
  return typeof (target as Partial<TagLister> | null)?.tags === 'function';
}

export function isMounter(target: unknown): target is Mounter {
  return typeof (target as Partial<Mounter> | null)?.mount === 'function';
}

export function isTagger(target: unknown): target is Tagger {
  return typeof (target as Partial<Tagger> | null)?.tag === 'function';
}

export function isResolver(target: unknown): target is Resolver {
  return typeof (target as Partial<Resolver> | null)?.resolve === 'function';
}

export function isBlobOpener(content: BlobContent): content is BlobOpener {
  return typeof content === 'function';
}
