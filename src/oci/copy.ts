import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import { AbortedError, throwIfAborted } from '../errors.js';
import { fetchAll, fetchManifest } from './content.js';
import { MAX_DOCUMENT_SIZE } from './document.js';
import { isManifestMediaType } from './mediatypes.js';
import type { Descriptor } from './schemas.js';
import { isMounter, type BlobContent, type Fetcher, type OperationOptions, type ReadOnlyStorage, type Storage } from './store.js';

/**
 * Moves a content graph (an index, its manifests, their configs and layers) from one store to
 * another, after oras-go's `CopyGraph`:
 * - children before parents: a manifest is pushed only once everything it references exists
 *   in the destination, so a registry never sees a manifest with missing blobs and a reader of
 *   the destination never sees a partial image;
 * - a node that already exists in the destination is skipped with its whole subtree;
 * - each digest is handled once, however many parents reference it;
 * - at most `concurrency` fetch/push/exists operations run at a time;
 * - the first failure stops the rest (in-flight operations are aborted and awaited) and is the
 *   error `copyGraph` rejects with;
 * - blobs reach `dst.push` as openers (`() => src.fetch(desc)`), so a destination may retry a
 *   failed transfer from a fresh stream rather than fail the copy.
 * Tagging the root is the caller's next step (`Tagger.tag`), not part of the copy.
 */

export type CopyEventType = 'started' | 'skipped' | 'mounted' | 'copied';

export interface CopyEvent {
  /**
   * `started`: a transfer of this node begins; `skipped`: it already existed in the destination
   * (its subtree is skipped too); `mounted`: a registry mounted it from another repository;
   * `copied`: its bytes were pushed.
   */
  readonly type: CopyEventType;
  readonly descriptor: Descriptor;
  /** Bytes that moved for this event: the blob's size for `copied`, otherwise 0. */
  readonly bytes: number;
}

/** Lists the descriptors a node references (fetching it from `fetcher` if needed). */
export type FindSuccessors = (fetcher: Fetcher, desc: Descriptor, options: OperationOptions) => Promise<readonly Descriptor[]>;

export interface CopyGraphOptions extends OperationOptions {
  /** Operations in flight at once. Default: `DEFAULT_COPY_CONCURRENCY` (8). */
  readonly concurrency?: number;
  /** Progress, one event per node and step. A listener that throws fails the copy. */
  readonly onEvent?: (event: CopyEvent) => void;
  /** What a node references. Default: `manifestSuccessors`. */
  readonly findSuccessors?: FindSuccessors;
  /**
   * For destinations that can mount (registries): the repositories of the same registry that
   * may already hold this blob. Each is tried in turn before the blob is pushed. Manifests are
   * never mounted.
   */
  readonly mountFrom?: (desc: Descriptor) => string | readonly string[] | undefined;
}

export const DEFAULT_COPY_CONCURRENCY = 8;

export interface CopyGraphResult {
  /** Nodes whose bytes were pushed. */
  readonly copied: number;
  /** Nodes mounted from another repository. */
  readonly mounted: number;
  /** Nodes found in the destination (their subtrees were not visited). */
  readonly skipped: number;
  /** Bytes pushed. */
  readonly bytes: number;
}

/**
 * The default `findSuccessors`: an image manifest references its config, its layers and its
 * `subject`; an index its manifests and its `subject`; anything else nothing. Manifests are
 * fetched capped at `MAX_DOCUMENT_SIZE`, verified and validated (`fetchManifest`).
 */
export async function manifestSuccessors(fetcher: Fetcher, desc: Descriptor, options: OperationOptions = {}): Promise<readonly Descriptor[]> {
  if (!isManifestMediaType(desc.mediaType)) return [];
  const parsed = await fetchManifest(fetcher, desc, options);
  const subject = parsed.value.subject === undefined ? [] : [parsed.value.subject];
  return parsed.kind === 'index' ? [...subject, ...parsed.value.manifests] : [...subject, parsed.value.config, ...parsed.value.layers];
}

/**
 * A fetcher over `src` that keeps, until they are pushed, the small blobs `findSuccessors`
 * reads (manifests), so that each is fetched once and pushed from memory. Larger fetches pass
 * straight through: only documents are ever held in memory.
 */
class DocumentCache implements Fetcher {
  readonly #src: Fetcher;
  readonly #held = new Map<string, Uint8Array>();

  constructor(src: Fetcher) {
    this.#src = src;
  }

  async fetch(desc: Descriptor, options: OperationOptions = {}): Promise<Readable> {
    if (desc.size > MAX_DOCUMENT_SIZE) return this.#src.fetch(desc, options);
    let bytes = this.#held.get(desc.digest);
    if (bytes === undefined) {
      bytes = await fetchAll(this.#src, desc, options);
      this.#held.set(desc.digest, bytes);
    }
    return Readable.from([bytes], { objectMode: false });
  }

  /** The bytes fetched for `desc`, forgotten once taken. */
  take(desc: Descriptor): Uint8Array | undefined {
    const bytes = this.#held.get(desc.digest);
    this.#held.delete(desc.digest);
    return bytes?.byteLength === desc.size ? bytes : undefined;
  }
}

/** Copies the graph rooted at `root` from `src` to `dst`. See the module comment. */
export async function copyGraph(src: ReadOnlyStorage, dst: Storage, root: Descriptor, options: CopyGraphOptions = {}): Promise<CopyGraphResult> {
  throwIfAborted(options.signal);
  const concurrency = options.concurrency ?? DEFAULT_COPY_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`copyGraph concurrency must be a positive integer, got ${concurrency}`);
  const findSuccessors = options.findSuccessors ?? manifestSuccessors;
  const limit = pLimit(concurrency);
  const cache = new DocumentCache(src);

  // One controller for the whole copy: the caller's signal and our own first failure both stop
  // every operation still running.
  const controller = new AbortController();
  const onCallerAbort = (): void => controller.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const signal = controller.signal;
  let firstError: unknown;
  const inFlight = new Set<Promise<unknown>>();

  const stats = { copied: 0, mounted: 0, skipped: 0, bytes: 0 };
  const emit = (type: CopyEventType, descriptor: Descriptor, bytes = 0): void => options.onEvent?.({ type, descriptor, bytes });

  /** Runs one store operation under the concurrency limit, tracked so a failure can wait for it. */
  const operation = <T>(fn: () => Promise<T>): Promise<T> => {
    const promise = limit(async () => {
      throwIfAborted(signal);
      return fn();
    });
    inFlight.add(promise);
    void promise.then(
      () => inFlight.delete(promise),
      (err: unknown) => {
        inFlight.delete(promise);
        firstError ??= err;
        controller.abort(err);
      },
    );
    return promise;
  };

  const visited = new Map<string, Promise<void>>();
  const visit = (desc: Descriptor): Promise<void> => {
    let done = visited.get(desc.digest);
    if (done === undefined) {
      done = copyNode(desc);
      // Parents await this; if a sibling already failed nobody may, and that is fine.
      done.catch(() => undefined);
      visited.set(desc.digest, done);
    }
    return done;
  };

  const copyNode = async (desc: Descriptor): Promise<void> => {
    if (await operation(() => dst.exists(desc, { signal }))) {
      stats.skipped++;
      emit('skipped', desc);
      return;
    }
    const children = await operation(() => findSuccessors(cache, desc, { signal }));
    await Promise.all(children.map(visit));
    await operation(async () => {
      if (!isManifestMediaType(desc.mediaType) && (await tryMount(desc))) return;
      emit('started', desc);
      // Manifests come from memory; everything else as an opener, so that a destination whose
      // transfer fails midway (a registry upload cut by a reset) can retry from a fresh stream.
      // What the opener returns is the source's verifying stream: a destination that recognises
      // it does not hash the bytes a second time.
      const content: BlobContent = cache.take(desc) ?? (() => src.fetch(desc, { signal }));
      await dst.push(desc, content, { signal });
      stats.copied++;
      stats.bytes += desc.size;
      emit('copied', desc, desc.size);
    });
  };

  const tryMount = async (desc: Descriptor): Promise<boolean> => {
    if (options.mountFrom === undefined || !isMounter(dst)) return false;
    const from = options.mountFrom(desc);
    for (const repository of typeof from === 'string' ? [from] : (from ?? [])) {
      if (await dst.mount(desc, repository, { signal })) {
        stats.mounted++;
        emit('mounted', desc);
        return true;
      }
    }
    return false;
  };

  try {
    await visit(root);
  } catch (err) {
    firstError ??= err;
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
  }
  if (firstError !== undefined) {
    controller.abort(firstError);
    // Nothing may still be writing to `dst` when copyGraph returns.
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    if (options.signal?.aborted && !(firstError instanceof AbortedError)) {
      throw new AbortedError('copy aborted', { cause: options.signal.reason });
    }
    throw firstError;
  }
  return stats;
}
