import { Readable } from 'node:stream';
import {
  DOCKER,
  InvalidDocumentError,
  InvalidReferenceError,
  isManifestMediaType,
  isSchema1MediaType,
  MAX_DOCUMENT_SIZE,
  OCI,
  parseDigest,
  parseManifest,
  TooLargeError,
  verifyBytes,
  VerifyingStream,
  isDigest,
  digestOf,
  isBlobOpener,
  type BlobContent,
  type Descriptor,
  type Digest,
  type Mounter,
  type OperationOptions,
  type ParsedManifest,
  type Target,
  type TagLister,
} from '../oci/index.js';
import type { RegistryClient } from './client.js';
import { describeError, isNotFoundError, redactUrl, RegistryError } from './errors.js';
import { PROGRESS_STEP } from './events.js';
import { repositoryScope } from './scope.js';
import { discardBody, dropBody, firstHeader, readBody, transportError, type HttpResponse } from './transport.js';
import { BlobUploadTap, readAtMost, uploadBlob, type PendingSession, type UploadTapOptions } from './upload.js';
import { ResumableDownload } from './download.js';

/** Every manifest type Stevedore reads, for `Accept` (registries serve OCI types only when asked). */
export const MANIFEST_ACCEPT = [OCI.index, OCI.manifest, DOCKER.manifestList, DOCKER.manifest].join(', ');

/** Repository names per the distribution spec: lower-case path components separated by `/`. */
const REPOSITORY_NAME = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** Pages of `tags/list` followed at most (each up to 1000 tags). */
const MAX_TAG_PAGES = 1000;
/** Manifests remembered per repository for `tag()` (pushed or fetched, by digest). */
const MANIFEST_CACHE_SIZE = 64;

export interface ManifestResult {
  /** The manifest's descriptor: media type, digest of the bytes received, size. */
  readonly descriptor: Descriptor;
  readonly manifest: ParsedManifest;
}

export interface PushBlobOptions extends OperationOptions {
  /** Repositories of the same registry that may hold the blob: tried as cross-repository mounts. */
  readonly mountFrom?: readonly string[] | undefined;
}

/** What happened to a blob on push. */
export type PushOutcome = 'uploaded' | 'skipped' | 'mounted';

/**
 * One repository of a registry, as an oci `Target` (fetch, exists, push, resolve, tag) with the
 * `Mounter` and `TagLister` capabilities, so one `copyGraph` pushes to or pulls from it. Fetched
 * blobs are verified against size and digest at EOF and resume with `Range` after a dropped
 * connection; pushed blobs are verified before the registry commits them.
 */
export class RegistryRepository implements Target, Mounter, TagLister {
  readonly client: RegistryClient;
  readonly name: string;
  readonly #manifests = new Map<string, { bytes: Uint8Array; mediaType: string }>();
  /** Upload sessions a declined mount (202) opened, used by the next push of that digest. */
  readonly #sessions = new Map<string, PendingSession>();

  constructor(client: RegistryClient, name: string) {
    if (!REPOSITORY_NAME.test(name) || name.length > 255) {
      throw new InvalidReferenceError(name, 'repository names are lower-case path components ([a-z0-9] separated by ".", "_", "__" or "-"), joined by "/"');
    }
    this.client = client;
    this.name = name;
  }

  get registry(): string {
    return this.client.registry;
  }

  /** `registry/repository`, for messages. */
  toString(): string {
    return `${this.client.registry}/${this.name}`;
  }

  get pullScope(): string {
    return repositoryScope(this.name, ['pull']);
  }

  get pushScope(): string {
    return repositoryScope(this.name, ['pull', 'push']);
  }

  // --- Resolver ---------------------------------------------------------------------------

  /**
   * Resolves a tag or a digest to the manifest's descriptor with `HEAD` and the full `Accept` list,
   * falling back to `GET` when the registry does not answer HEAD properly. Schema 1 is refused.
   */
  async resolve(reference: string, options: OperationOptions = {}): Promise<Descriptor> {
    const ref = this.#checkReference(reference);
    const what = this.#describe(ref);
    return await this.client.withRetries(`resolve ${what}`, async () => {
      const response = await this.client.send({
        method: 'HEAD',
        target: this.#path('manifests', ref),
        headers: { accept: MANIFEST_ACCEPT },
        scopes: [this.pullScope],
        expect: [200, 404, 405, 501],
        action: 'resolve',
        reference: what,
        signal: options.signal,
      });
      await discardBody(response.body);
      if (response.status === 404) {
        throw new RegistryError({
          code: 'MANIFEST_UNKNOWN',
          message: `resolve ${what}: manifest unknown (HEAD ${redactUrl(response.url)} → 404)`,
          registry: this.registry,
          reference: what,
          method: 'HEAD',
          url: redactUrl(response.url),
          status: 404,
        });
      }
      const headerDigest = firstHeader(response.headers['docker-content-digest']);
      const contentType = mediaTypeOf(response.headers['content-type']);
      const length = Number(firstHeader(response.headers['content-length']));
      if (response.status === 200 && contentType !== undefined && isSchema1MediaType(contentType)) throw schema1Error(what);
      if (response.status === 200 && headerDigest !== undefined && isDigest(headerDigest) && isManifestMediaType(contentType) && Number.isSafeInteger(length)) {
        if (isDigest(ref) && headerDigest !== ref) throw this.#protocolError(`resolve ${what}: the registry answered for ${headerDigest}`);
        return { mediaType: contentType!, digest: headerDigest, size: length };
      }
      // HEAD unsupported or incomplete: GET the manifest and hash what arrives.
      return (await this.#getManifest(ref, what, options.signal, Number.isSafeInteger(length) && response.status === 200 ? length : undefined)).descriptor;
    }, options.signal);
  }

  /** Fetches and parses a manifest or index by tag or digest, verified against its digest. */
  async fetchManifest(reference: string, options: OperationOptions = {}): Promise<ManifestResult> {
    const ref = this.#checkReference(reference);
    const what = this.#describe(ref);
    return await this.client.withRetries(`fetch manifest ${what}`, () => this.#getManifest(ref, what, options.signal), options.signal);
  }

  /** GETs a manifest; `size`, when known, tells a truncated answer (retried) from a wrong one. */
  async #getManifest(ref: string, what: string, signal: AbortSignal | undefined, size?: number): Promise<ManifestResult> {
    const response = await this.client.send({
      method: 'GET',
      target: this.#path('manifests', ref),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [this.pullScope],
      expect: [200],
      action: 'fetch manifest',
      reference: what,
      followRedirects: true,
      signal,
    });
    const bytes = await readDocument(response, what);
    if (size !== undefined && bytes.byteLength < size) {
      throw new RegistryError({
        code: 'CONNECTION_FAILED',
        message: `fetch manifest ${what}: the body ended after ${bytes.byteLength} of ${size} bytes`,
        registry: this.registry,
        reference: what,
        method: 'GET',
        url: redactUrl(response.url),
      });
    }
    const announced = mediaTypeOf(response.headers['content-type']);
    if (announced !== undefined && isSchema1MediaType(announced) && announced !== 'application/json') throw schema1Error(what);
    const headerDigest = firstHeader(response.headers['docker-content-digest']);
    let expected: Digest;
    if (isDigest(ref)) {
      expected = ref;
    } else if (headerDigest !== undefined && isDigest(headerDigest)) {
      expected = headerDigest;
    } else {
      expected = digestOf(bytes);
    }
    let manifest: ParsedManifest;
    try {
      manifest = parseManifest(bytes, { digest: expected, size: bytes.byteLength }, announced);
    } catch (err) {
      if (err instanceof InvalidDocumentError) throw new InvalidDocumentError(`manifest ${what}`, err.message.replace(/^invalid [^:]+: /, ''), { cause: err });
      throw err;
    }
    this.#remember(manifest.digest, bytes, manifest.mediaType);
    return { descriptor: { mediaType: manifest.mediaType, digest: manifest.digest, size: bytes.byteLength }, manifest };
  }

  // --- Fetcher / Exister ------------------------------------------------------------------

  /**
   * Opens a manifest or blob. Manifests are read whole (capped at 4 MiB) and verified; blobs are
   * streamed, verified at EOF, and resumed with `Range` after a reset or a short body, within the
   * retry policy.
   */
  async fetch(desc: Descriptor, options: OperationOptions = {}): Promise<Readable> {
    if (isManifestMediaType(desc.mediaType)) {
      const bytes = await this.#manifestBytes(desc, options.signal);
      return Readable.from([Buffer.from(bytes)], { objectMode: false });
    }
    const source = this.#blobStream(desc, options.signal);
    const verifier = new VerifyingStream({ digest: desc.digest, size: desc.size }, `blob ${desc.digest}`);
    // Wired by hand rather than with stream.pipeline, whose per-call AbortController costs more
    // than a small blob's whole transfer: a download failure reaches the consumer through the
    // verifier, and a consumer that stops early stops the download.
    source.on('error', (err) => verifier.destroy(err));
    verifier.on('close', () => {
      if (!source.destroyed) source.destroy();
    });
    source.pipe(verifier);
    return verifier;
  }

  /** Whether the repository holds the manifest or blob (`HEAD`). */
  async exists(desc: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    const kind = isManifestMediaType(desc.mediaType) ? 'manifests' : 'blobs';
    const what = `${this.name}@${desc.digest}`;
    return await this.client.withRetries(`check ${what}`, async () => {
      const response = await this.client.send({
        method: 'HEAD',
        target: this.#path(kind, desc.digest),
        headers: kind === 'manifests' ? { accept: MANIFEST_ACCEPT } : {},
        scopes: [this.pullScope],
        expect: [200, 404],
        action: 'check',
        reference: what,
        followRedirects: true,
        signal: options.signal,
      });
      await discardBody(response.body);
      return response.status === 200;
    }, options.signal);
  }

  /** Whether a tag or digest names a manifest here (a successful resolve). */
  async referenceExists(reference: string, options: OperationOptions = {}): Promise<boolean> {
    try {
      await this.resolve(reference, options);
      return true;
    } catch (err) {
      if (isNotFoundError(err)) return false;
      throw err;
    }
  }

  #blobStream(desc: Descriptor, signal: AbortSignal | undefined): Readable {
    const client = this.client;
    const what = `${this.name}@${desc.digest}`;
    let reported = 0;
    const progress = (transferred: number): void => {
      if (transferred - reported < PROGRESS_STEP && transferred < desc.size) return;
      reported = transferred;
      client.emit({ type: 'blob-progress', registry: client.registry, repository: this.name, direction: 'pull', digest: desc.digest, transferred, size: desc.size });
      if (transferred >= desc.size) client.emit({ type: 'blob-done', registry: client.registry, repository: this.name, direction: 'pull', digest: desc.digest, size: desc.size });
    };
    return new ResumableDownload({
      what,
      registry: client.registry,
      size: desc.size,
      policy: client.retryPolicy,
      signal,
      onProgress: progress,
      onRetry: (attempt, delayMs, error) =>
        client.emit({
          type: 'retry',
          registry: client.registry,
          operation: `fetch blob ${what}`,
          attempt,
          maxAttempts: client.retryPolicy.maxAttempts,
          delayMs,
          cause: describeError(error),
        }),
      open: async (offset) => {
        const response = await client.send({
          method: 'GET',
          target: this.#path('blobs', desc.digest),
          headers: offset > 0 ? { range: `bytes=${offset}-` } : {},
          scopes: [this.pullScope],
          expect: [200, 206],
          action: 'fetch blob',
          reference: what,
          followRedirects: true,
          signal,
        });
        // A 200 to a range request starts at zero; the download skips what it already has.
        return {
          body: response.body,
          start: response.status === 206 ? rangeStart(response) : 0,
          classify: (err) => transportError(err, 'GET', response.url, signal),
        };
      },
    });
  }

  async #manifestBytes(desc: Descriptor, signal: AbortSignal | undefined): Promise<Uint8Array> {
    const cached = this.#manifests.get(desc.digest);
    if (cached) {
      verifyBytes(cached.bytes, { digest: desc.digest, size: desc.size }, 'manifest');
      return cached.bytes;
    }
    if (desc.size > MAX_DOCUMENT_SIZE) throw new TooLargeError(MAX_DOCUMENT_SIZE, `manifest ${this.name}@${desc.digest}`);
    const what = `${this.name}@${desc.digest}`;
    const { manifest } = await this.client.withRetries(`fetch manifest ${what}`, () => this.#getManifest(desc.digest, what, signal, desc.size), signal);
    verifyBytes(manifest.bytes, { digest: desc.digest, size: desc.size }, 'manifest');
    return manifest.bytes;
  }

  // --- Pusher / Tagger / Mounter ----------------------------------------------------------

  /**
   * Pushes a manifest (PUT by digest, after verifying the bytes) or a blob. A blob's `content` may
   * be bytes, a one-shot stream, or an opener (`() => stream`) that can be called again, which
   * makes every failure retryable from the start; see `uploadBlob` for the strategies. A stream
   * that verifies `desc` itself (another store's `fetch`) is not hashed a second time.
   */
  async push(desc: Descriptor, content: BlobContent, options: OperationOptions = {}): Promise<void> {
    if (isManifestMediaType(desc.mediaType)) {
      const bytes = await readAtMost(isBlobOpener(content) ? await content() : content, MAX_DOCUMENT_SIZE, `manifest ${desc.digest}`);
      await this.pushManifest(bytes, desc.mediaType, undefined, { ...options, expected: desc });
      return;
    }
    await this.pushBlob(desc, content, options);
  }

  /** Pushes a blob and says whether it was uploaded, already there, or mounted. */
  async pushBlob(desc: Descriptor, content: BlobContent, options: PushBlobOptions = {}): Promise<PushOutcome> {
    if (isManifestMediaType(desc.mediaType)) throw new InvalidDocumentError('blob', `${desc.mediaType} is a manifest type; use pushManifest`);
    parseDigest(desc.digest);
    return await uploadBlob(this, desc, content, options);
  }

  /**
   * A pass-through stream that uploads what flows through it as a new blob of this repository,
   * for content whose digest is known only at its end (a layer being compressed): see
   * `BlobUploadTap`. The upload never fails the stream; `done` tells how it went.
   */
  uploadTap(options: UploadTapOptions = {}): BlobUploadTap {
    return new BlobUploadTap(this, options);
  }

  /** The upload session a declined mount of `digest` opened, handed out once. */
  takeSession(digest: string): PendingSession | undefined {
    const session = this.#sessions.get(digest);
    this.#sessions.delete(digest);
    return session;
  }

  /**
   * PUTs a manifest under its digest (and under `tag` too when given). The bytes are sent as
   * they are (their digest is the manifest's identity); the registry refuses a manifest whose
   * blobs it does not hold, so a manifest never lands before its content.
   */
  async pushManifest(
    bytes: Uint8Array,
    mediaType: string,
    tag?: string,
    options: OperationOptions & { readonly expected?: Descriptor } = {},
  ): Promise<Descriptor> {
    if (!isManifestMediaType(mediaType)) throw new InvalidDocumentError('manifest', `unsupported manifest media type ${JSON.stringify(mediaType)}`);
    if (bytes.byteLength > MAX_DOCUMENT_SIZE) throw new TooLargeError(MAX_DOCUMENT_SIZE, 'manifest');
    const digest = digestOf(bytes);
    if (options.expected) verifyBytes(bytes, { digest: options.expected.digest, size: options.expected.size }, 'manifest');
    // Parsing refuses schema 1 and malformed documents before they reach the registry.
    parseManifest(bytes, { digest, size: bytes.byteLength }, mediaType);
    const reference = tag === undefined ? digest : this.#checkReference(tag);
    const what = this.#describe(reference);
    await this.client.withRetries(`push manifest ${what}`, async () => {
      const response = await this.client.send({
        method: 'PUT',
        target: this.#path('manifests', reference),
        headers: { 'content-type': mediaType },
        body: bytes,
        scopes: [this.pushScope],
        expect: [200, 201, 202],
        action: 'push manifest',
        reference: what,
        signal: options.signal,
      });
      await discardBody(response.body);
      const answered = firstHeader(response.headers['docker-content-digest']);
      if (answered !== undefined && isDigest(answered) && answered !== digest) {
        throw this.#protocolError(`push manifest ${what}: the registry stored it as ${answered}, not ${digest}`);
      }
    }, options.signal);
    this.#remember(digest, bytes, mediaType);
    this.client.emit({
      type: 'manifest-pushed',
      registry: this.registry,
      repository: this.name,
      digest,
      mediaType,
      ...(tag === undefined ? {} : { tag }),
    });
    return { mediaType, digest, size: bytes.byteLength };
  }

  /** Points `tag` at a manifest the repository holds (re-PUTs its exact bytes under the tag). */
  async tag(desc: Descriptor, reference: string, options: OperationOptions = {}): Promise<void> {
    if (!TAG.test(reference)) throw new InvalidReferenceError(reference, 'a tag is up to 128 characters of [A-Za-z0-9_.-], not starting with "." or "-"');
    const bytes = await this.#manifestBytes(desc, options.signal);
    await this.pushManifest(bytes, desc.mediaType, reference, { ...options, expected: desc });
  }

  /**
   * Cross-repository mount (`POST ?mount=&from=`), asking for pull on the source and push on this
   * repository in one token. 201: mounted. 202: the registry declined and opened an ordinary
   * upload session instead, which the next push of this digest uses.
   */
  async mount(desc: Descriptor, fromRepository: string, options: OperationOptions = {}): Promise<boolean> {
    if (fromRepository === this.name) return false;
    if (!REPOSITORY_NAME.test(fromRepository)) throw new InvalidReferenceError(fromRepository, 'not a repository name');
    const what = `${this.name}@${desc.digest}`;
    const outcome = await this.client.withRetries(`mount ${what}`, async () => {
      const url = this.#path('blobs', 'uploads/');
      const response = await this.client.send({
        method: 'POST',
        target: `${url}?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(fromRepository)}`,
        scopes: [this.pushScope, repositoryScope(fromRepository, ['pull'])],
        expect: [201, 202],
        action: 'mount blob',
        reference: what,
        signal: options.signal,
      });
      await discardBody(response.body);
      if (response.status === 201) return true;
      const location = firstHeader(response.headers.location);
      if (location !== undefined) this.#sessions.set(desc.digest, { location: new URL(location, response.url), openedAt: Date.now() });
      return false;
    }, options.signal);
    if (outcome) {
      this.client.emit({ type: 'blob-mounted', registry: this.registry, repository: this.name, digest: desc.digest, size: desc.size, from: fromRepository });
    }
    return outcome;
  }

  // --- TagLister --------------------------------------------------------------------------

  /** Every tag of the repository, following `Link` pagination (`pageSize` tags per request). */
  async tags(options: OperationOptions & { readonly pageSize?: number } = {}): Promise<string[]> {
    const tags: string[] = [];
    let target: string | URL = `${this.#path('tags', 'list')}?n=${options.pageSize ?? 1000}`;
    for (let page = 0; page < MAX_TAG_PAGES; page++) {
      const current = target;
      const response = await this.client.withRetries(`list tags of ${this.name}`, () =>
        this.client.send({
          method: 'GET',
          target: current,
          scopes: [this.pullScope],
          expect: [200],
          action: 'list tags',
          reference: this.name,
          followRedirects: true,
          signal: options.signal,
        }),
        options.signal,
      );
      const body = await readBody(response.body, MAX_DOCUMENT_SIZE);
      if (body === undefined) throw new TooLargeError(MAX_DOCUMENT_SIZE, `tag list of ${this.name}`);
      let json: unknown;
      try {
        json = JSON.parse(body.toString('utf8'));
      } catch {
        throw this.#protocolError(`list tags of ${this.name}: the answer is not JSON`);
      }
      const list = (json as { tags?: unknown } | null)?.tags;
      if (list !== null && list !== undefined && (!Array.isArray(list) || list.some((t) => typeof t !== 'string'))) {
        throw this.#protocolError(`list tags of ${this.name}: "tags" is not a list of strings`);
      }
      if (Array.isArray(list)) tags.push(...(list as string[]));
      const next = nextLink(firstHeader(response.headers.link), response.url);
      if (next === undefined) return tags;
      target = next;
    }
    throw this.#protocolError(`list tags of ${this.name}: more than ${MAX_TAG_PAGES} pages`);
  }

  // --- helpers ----------------------------------------------------------------------------

  #path(kind: 'manifests' | 'blobs' | 'tags', ref: string): string {
    return `/v2/${this.name}/${kind}/${ref}`;
  }

  #checkReference(reference: string): string {
    if (isDigest(reference)) return reference;
    if (reference.includes(':')) parseDigest(reference); // throws InvalidDigestError with the reason
    if (!TAG.test(reference)) throw new InvalidReferenceError(reference, 'not a tag or a digest');
    return reference;
  }

  #describe(ref: string): string {
    return isDigest(ref) ? `${this.name}@${ref}` : `${this.name}:${ref}`;
  }

  #protocolError(message: string): RegistryError {
    return new RegistryError({ code: 'PROTOCOL_ERROR', message, registry: this.registry, reference: this.name });
  }

  #remember(digest: string, bytes: Uint8Array, mediaType: string): void {
    this.#manifests.delete(digest);
    this.#manifests.set(digest, { bytes, mediaType });
    if (this.#manifests.size > MANIFEST_CACHE_SIZE) {
      const oldest = this.#manifests.keys().next().value;
      if (oldest !== undefined) this.#manifests.delete(oldest);
    }
  }

  /** The upload session URL base: `/v2/NAME/blobs/uploads/`. */
  get uploadsPath(): string {
    return this.#path('blobs', 'uploads/');
  }
}

/** `Content-Type` without parameters. */
function mediaTypeOf(value: string | string[] | undefined): string | undefined {
  const first = firstHeader(value);
  if (first === undefined) return undefined;
  const type = first.split(';')[0]!.trim();
  return type === '' ? undefined : type;
}

function schema1Error(what: string): InvalidDocumentError {
  return new InvalidDocumentError(`manifest ${what}`, 'Docker schema 1 manifests are not supported (deprecated since 2017); re-push the image with a current client');
}

/** Reads a manifest body, refusing more than 4 MiB before and while reading. */
async function readDocument(response: HttpResponse, what: string): Promise<Uint8Array> {
  const length = Number(firstHeader(response.headers['content-length']));
  if (Number.isFinite(length) && length > MAX_DOCUMENT_SIZE) {
    dropBody(response.body);
    throw new TooLargeError(MAX_DOCUMENT_SIZE, `manifest ${what}`);
  }
  const body = await readBody(response.body, MAX_DOCUMENT_SIZE);
  if (body === undefined) throw new TooLargeError(MAX_DOCUMENT_SIZE, `manifest ${what}`);
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
}

/** The first byte a 206 answer covers (`Content-Range: bytes START-END/TOTAL`). */
function rangeStart(response: HttpResponse): number {
  const match = /^bytes (\d+)-/.exec(firstHeader(response.headers['content-range']) ?? '');
  return match ? Number(match[1]) : 0;
}

/** The `rel="next"` target of a `Link` header, resolved against the current URL. */
export function nextLink(link: string | undefined, base: URL): URL | undefined {
  if (link === undefined) return undefined;
  for (const part of link.split(',')) {
    const match = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (match && /rel="?next"?/.test(match[2]!)) {
      try {
        return new URL(match[1]!, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

