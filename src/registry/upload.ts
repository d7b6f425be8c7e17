import { PassThrough, pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import {
  Digester,
  isBlobOpener,
  isVerifyingStreamFor,
  openReadable,
  SizeMismatchError,
  toReadable,
  verifyBytes,
  VerifyingStream,
  type BlobContent,
  type Descriptor,
  type Digest,
  type HashedBytes,
  type OperationOptions,
} from '../oci/index.js';
import { describeError, isTemporaryError, redactUrl, RegistryError } from './errors.js';
import { PROGRESS_STEP } from './events.js';
import { backoffDelay, sleep } from './retry.js';
import type { PushOutcome, RegistryRepository } from './repository.js';
import { discardBody, firstHeader, type HttpResponse } from './transport.js';

/**
 * A blob source that can be opened again (part of the oci store contract, re-exported here where
 * it used to live): with it, any upload failure is retried from a new session; with a one-shot
 * stream only what is still held in memory can be re-sent.
 */
export type { BlobOpener } from '../oci/index.js';

/** An upload session opened earlier (by a declined mount). */
export interface PendingSession {
  readonly location: URL;
  readonly openedAt: number;
}

export interface UploadOptions extends OperationOptions {
  readonly mountFrom?: readonly string[] | undefined;
}

/** Sessions older than this are not reused (registries expire them). */
const SESSION_MAX_AGE_MS = 5 * 60_000;

/**
 * Uploads one blob, in the order the distribution spec and real registries reward:
 * 1. large blobs: `HEAD` first, nothing to send when the registry has it;
 * 2. cross-repository mounts from the given repositories (201 mounted; 202 opens a session that
 *    the upload then uses instead of a new `POST`);
 * 3. then, by source and size:
 *    - bytes, or content up to `monolithicUploadLimit` (a one-shot stream or an opener, read into
 *      memory and verified first): `POST`, then one `PUT ?digest=` with the body (never the
 *      single-`POST` form, which distribution 2.8 ignores); a failure retries from a new `POST`;
 *    - a larger opener: `POST`, one streamed `PATCH`, `PUT ?digest=`; a failure retries the whole
 *      upload from a new `POST` with a fresh stream (after a `HEAD`: a commit whose answer was
 *      lost may have stored the blob already);
 *    - a larger one-shot stream: by default one streamed `PATCH` (fast, memory flat), whose
 *      interruption is fatal (UPLOAD_INTERRUPTED: its bytes are gone); with `uploadChunkSize`,
 *      `PATCH` chunks with `Content-Range`, each held in memory until the registry has it, so a
 *      dropped connection resumes from the registry's `Range` when the session survived. The
 *      `POST` and the final `PUT`, which carry no content, are retried either way.
 * The content is verified against the descriptor on the way out, so a wrong source fails with
 * `DigestMismatchError`/`SizeMismatchError` before the registry commits anything; the registry's
 * digest answer to the final `PUT` is checked too. A source stream that already verifies this
 * descriptor (what a store's `fetch` returns) is not hashed again: its own failure at EOF stops
 * the request before the final `PUT`. Abandoned sessions are cancelled (`DELETE`).
 */
export async function uploadBlob(repo: RegistryRepository, desc: Descriptor, content: BlobContent, options: UploadOptions = {}): Promise<PushOutcome> {
  const client = repo.client;
  return await client.limitUpload(async () => {
    const signal = options.signal;
    const oneShot = !isBlobOpener(content) && !(content instanceof Uint8Array);
    try {
      if (desc.size > client.monolithicUploadLimit && (await repo.exists(desc, { ...(signal === undefined ? {} : { signal }) }))) {
        client.emit({ type: 'blob-skipped', registry: repo.registry, repository: repo.name, digest: desc.digest, size: desc.size });
        return 'skipped';
      }
      for (const from of options.mountFrom ?? []) {
        if (await repo.mount(desc, from, { ...(signal === undefined ? {} : { signal }) })) return 'mounted';
      }
    } catch (err) {
      if (oneShot) destroyContent(content);
      throw err;
    }
    const context = new UploadContext(repo, desc, signal);
    // A declined mount (here or earlier) left an open session: use it, if the registry still
    // knows it, instead of opening another. Only the first attempt may; retries start afresh.
    const pending = repo.takeSession(desc.digest);
    let session = pending !== undefined && Date.now() - pending.openedAt < SESSION_MAX_AGE_MS ? (await context.status(pending.location))?.location : undefined;
    const takeSession = (): URL | undefined => {
      const s = session;
      session = undefined;
      return s;
    };
    if (content instanceof Uint8Array || desc.size <= client.monolithicUploadLimit) {
      const bytes = await readVerified(content, desc);
      await client.withRetries(`push blob ${context.what}`, async () => context.commit(takeSession() ?? (await context.open()), bytes), signal);
    } else if (isBlobOpener(content)) {
      // Re-openable: every failure restarts the whole upload from a new POST with a fresh stream,
      // never the rest of the stream that failed.
      await client.withRetries(`push blob ${context.what}`, async (attempt) => {
        // After a commit whose answer was lost the blob is there: do not send it a second time.
        if (attempt > 1 && (await repo.exists(desc, signal === undefined ? {} : { signal }))) return;
        const source = await openReadable(content);
        let location: URL;
        try {
          location = takeSession() ?? (await context.open());
        } catch (err) {
          source.destroy();
          throw err;
        }
        try {
          await context.streamed(verified(source, desc), location);
        } catch (err) {
          source.destroy();
          await context.cancel(context.lastLocation ?? location);
          throw err;
        }
        await context.commit(context.lastLocation, undefined);
      }, signal);
    } else {
      // One-shot and large: the steps that send no content (POST, the final PUT) are retried on
      // their own; the content itself can be re-sent only from what is still in memory.
      const stream = toReadable(content);
      let location: URL;
      try {
        location = takeSession() ?? (await client.withRetries(`start upload of ${context.what}`, () => context.open(), signal));
      } catch (err) {
        stream.destroy();
        throw err;
      }
      if (client.uploadChunkSize > 0) {
        await context.chunked(verified(stream, desc), client.uploadChunkSize, location);
      } else {
        try {
          await context.streamed(verified(stream, desc), location);
        } catch (err) {
          await context.cancel(location);
          throw isTemporaryError(err) ? context.interrupted(err) : err;
        }
      }
      await client.withRetries(`commit upload of ${context.what}`, (attempt) => context.commit(context.lastLocation, undefined, attempt > 1), signal);
    }
    client.emit({ type: 'blob-done', registry: repo.registry, repository: repo.name, direction: 'push', digest: desc.digest, size: desc.size });
    return 'uploaded';
  });
}

/** The source verified against `desc` on its way out, unless it verifies that descriptor itself. */
function verified(source: Readable, desc: Descriptor): Readable {
  if (isVerifyingStreamFor(source, desc)) return source;
  return pipeline(source, new VerifyingStream({ digest: desc.digest, size: desc.size }, `blob ${desc.digest}`), () => undefined);
}

/** The requests of one blob upload session. */
class UploadContext {
  /** `repository@digest`, for messages; a streamed blob is named by its digest once known. */
  what: string;
  /** The session URL the registry sent last (each answer may carry a new one). */
  lastLocation: URL | undefined;
  #desc: Descriptor | undefined;
  #reported = 0;

  constructor(
    readonly repo: RegistryRepository,
    desc: Descriptor | undefined,
    readonly signal: AbortSignal | undefined,
  ) {
    this.#desc = desc;
    this.what = desc === undefined ? `${repo.name} (a streamed blob)` : `${repo.name}@${desc.digest}`;
  }

  /** The blob, once known: a streamed upload learns its digest only at the end. */
  get desc(): Descriptor {
    if (this.#desc === undefined) throw new Error(`upload ${this.what}: the blob's digest is not known yet`);
    return this.#desc;
  }

  identify(desc: Descriptor): void {
    this.#desc = desc;
    this.what = `${this.repo.name}@${desc.digest}`;
  }

  /** `POST /blobs/uploads/`: a new session's URL. */
  async open(): Promise<URL> {
    const response = await this.repo.client.send({
      method: 'POST',
      target: this.repo.uploadsPath,
      scopes: [this.repo.pushScope],
      expect: [202],
      action: 'start blob upload',
      reference: this.what,
      signal: this.signal,
    });
    await discardBody(response.body);
    return this.#location(response);
  }

  /**
   * One streamed PATCH with the whole content. When the content verifies itself (see
   * `verified`), the request body ends only once it has passed: a mismatch fails the PATCH
   * before the registry answers it.
   */
  async streamed(content: Readable, location: URL): Promise<void> {
    this.lastLocation = location;
    // A restarted upload reports its progress from zero again.
    this.#reported = 0;
    // Content that failed before the request started has no error event left to wait for.
    if (content.destroyed) throw content.errored ?? new Error(`upload ${this.what}: the content stream was closed before it was sent`);
    const body = new ByteCounter((sent) => this.#progress(sent, false));
    // Wired by hand, not with pipeline: a failed request must stop the content without handing it
    // its own error, so that an error on `content` always means the content itself failed (a
    // digest mismatch, a broken source), which is then the error to report, not the request's.
    let contentError: Error | undefined;
    content.on('error', (err) => {
      contentError ??= err;
      body.destroy(err);
    });
    body.once('close', () => {
      if (!content.destroyed) content.destroy();
    });
    content.pipe(body);
    try {
      const response = await this.repo.client.send({
        method: 'PATCH',
        target: location,
        headers: { 'content-type': 'application/octet-stream' },
        body,
        scopes: [this.repo.pushScope],
        expect: [202, 204],
        action: 'upload blob',
        reference: this.what,
        signal: this.signal,
      });
      await discardBody(response.body);
      this.lastLocation = this.#location(response, location);
    } catch (err) {
      body.destroy();
      throw contentError ?? err;
    }
    if (contentError !== undefined) throw contentError;
  }

  /**
   * PATCH chunks of `chunkSize` with `Content-Range`, reading the next chunk while the current one
   * is sent. A failed PATCH asks the registry how much it has (`GET` the session → `Range`) and
   * re-sends from there out of the chunk in memory.
   */
  async chunked(content: Readable, chunkSize: number, start: URL): Promise<void> {
    // Chunks may reach the registry before the end is verified; the commit waits until the loop
    // has seen the stream end, i.e. until verification passed.
    const chunks = chunksOf(content, chunkSize)[Symbol.asyncIterator]();
    let location = start;
    let offset = 0;
    let next = chunks.next();
    // The pending read may fail while a PATCH is in flight; it is awaited (and thrown) in order.
    next.catch(() => undefined);
    try {
      for (;;) {
        const result = await next;
        if (result.done) break;
        next = chunks.next();
        next.catch(() => undefined);
        location = await this.#sendChunk(location, result.value, offset);
        offset += result.value.length;
        this.#progress(offset, false);
      }
    } catch (err) {
      content.destroy();
      await this.cancel(location);
      throw err;
    }
    this.lastLocation = location;
  }

  async #sendChunk(location: URL, chunk: Buffer, start: number): Promise<URL> {
    const policy = this.repo.client.retryPolicy;
    let from = start;
    let current = location;
    for (let attempt = 1; ; attempt++) {
      const piece = chunk.subarray(from - start);
      try {
        const response = await this.repo.client.send({
          method: 'PATCH',
          target: current,
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${from}-${from + piece.length - 1}`,
          },
          body: piece,
          scopes: [this.repo.pushScope],
          expect: [202, 204],
          action: 'upload blob chunk',
          reference: this.what,
          signal: this.signal,
        });
        await discardBody(response.body);
        return this.#location(response, current);
      } catch (err) {
        if (attempt >= policy.maxAttempts || this.signal?.aborted || !(policy.retryable ?? isTemporaryError)(err)) {
          throw isTemporaryError(err) ? this.interrupted(err) : err;
        }
        const delayMs = backoffDelay(policy, attempt);
        this.repo.client.emit({
          type: 'retry',
          registry: this.repo.registry,
          operation: `upload chunk ${from}-${start + chunk.length - 1} of ${this.what}`,
          attempt,
          maxAttempts: policy.maxAttempts,
          delayMs,
          cause: describeError(err),
        });
        await sleep(delayMs, this.signal);
        // Where does the registry stand? Resume from there if it is within this chunk.
        const status = await this.status(current);
        if (status === undefined || status.offset < start || status.offset > start + chunk.length) throw this.interrupted(err);
        current = status.location;
        from = status.offset;
        if (from === start + chunk.length) return current;
        if (this.#desc !== undefined) this.repo.client.emit({ type: 'upload-resumed', registry: this.repo.registry, repository: this.repo.name, digest: this.#desc.digest, offset: from });
      }
    }
  }

  /** `GET` the session: how many bytes it holds, or undefined when it is gone. */
  async status(location: URL): Promise<{ offset: number; location: URL } | undefined> {
    try {
      const response = await this.repo.client.send({
        method: 'GET',
        target: location,
        scopes: [this.repo.pushScope],
        expect: [204, 200],
        action: 'check blob upload',
        reference: this.what,
        signal: this.signal,
      });
      await discardBody(response.body);
      const range = /^(?:bytes=)?(\d+)-(\d+)$/.exec(firstHeader(response.headers.range)?.trim() ?? '');
      // `0-0` is what distribution answers for an empty session as well as for one byte.
      const offset = range === null ? 0 : Number(range[2]) === 0 && Number(range[1]) === 0 ? 0 : Number(range[2]) + 1;
      return { offset, location: this.#location(response, location) };
    } catch {
      return undefined;
    }
  }

  /**
   * `PUT ?digest=`: commits the session, with the content as body when given (monolithic). On a
   * repeated attempt, a session the registry no longer knows may mean the first PUT succeeded and
   * only its answer was lost: the blob's presence decides.
   */
  async commit(location: URL | undefined, body: Uint8Array | undefined, repeated = false): Promise<void> {
    if (location === undefined) throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `upload ${this.what}: no session to commit`, registry: this.repo.registry });
    const url = new URL(location);
    url.searchParams.set('digest', this.desc.digest);
    let response: HttpResponse;
    try {
      response = await this.#put(url, body);
    } catch (err) {
      if (repeated && (err as RegistryError).status === 404 && (await this.repo.exists(this.desc, this.signal === undefined ? {} : { signal: this.signal }))) {
        this.#progress(this.desc.size, true);
        return;
      }
      if (body !== undefined) await this.cancel(location);
      throw err;
    }
    await discardBody(response.body);
    const answered = firstHeader(response.headers['docker-content-digest']);
    if (answered !== undefined && answered !== this.desc.digest) {
      throw new RegistryError({
        code: 'PROTOCOL_ERROR',
        message: `commit blob upload ${this.what}: the registry stored ${answered}`,
        registry: this.repo.registry,
        reference: this.what,
        method: 'PUT',
        url: redactUrl(url),
      });
    }
    this.#progress(this.desc.size, true);
  }

  #put(url: URL, body: Uint8Array | undefined): Promise<HttpResponse> {
    return this.repo.client.send({
      method: 'PUT',
      target: url,
      // Distribution 2.8 swallows a PUT body sent with a form content type (then DIGEST_INVALID).
      headers: { 'content-type': 'application/octet-stream' },
      body: body ?? new Uint8Array(0),
      scopes: [this.repo.pushScope],
      expect: [201, 204],
      action: 'commit blob upload',
      reference: this.what,
      signal: this.signal,
    });
  }

  /** Best-effort `DELETE` of an abandoned session, so the registry does not keep its bytes. */
  async cancel(location: URL): Promise<void> {
    try {
      const response = await this.repo.client.send({
        method: 'DELETE',
        target: location,
        scopes: [this.repo.pushScope],
        expect: [204, 200, 202, 404],
        action: 'cancel blob upload',
        reference: this.what,
      });
      await discardBody(response.body);
    } catch {
      // The registry expires abandoned sessions on its own.
    }
  }

  #location(response: HttpResponse, fallback?: URL): URL {
    const location = firstHeader(response.headers.location);
    if (location === undefined || location === '') {
      if (fallback) return fallback;
      throw new RegistryError({
        code: 'PROTOCOL_ERROR',
        message: `upload ${this.what}: the registry sent no Location (${redactUrl(response.url)} → ${response.status})`,
        registry: this.repo.registry,
        reference: this.what,
      });
    }
    return new URL(location, response.url);
  }

  #progress(transferred: number, final: boolean): void {
    // A streamed blob has no digest to report progress under until it is complete.
    if (this.#desc === undefined) return;
    if (!final && transferred - this.#reported < PROGRESS_STEP) return;
    this.#reported = transferred;
    this.repo.client.emit({
      type: 'blob-progress',
      registry: this.repo.registry,
      repository: this.repo.name,
      direction: 'push',
      digest: this.#desc.digest,
      transferred,
      size: this.#desc.size,
    });
  }

  interrupted(cause: unknown): RegistryError {
    return new RegistryError({
      code: 'UPLOAD_INTERRUPTED',
      message: `upload ${this.what} was interrupted and its content was a one-shot stream that cannot be sent again (${(cause as Error)?.message ?? String(cause)}); push it from a re-openable source to retry`,
      registry: this.repo.registry,
      reference: this.what,
      cause,
    });
  }
}

/** A blob uploaded by a `BlobUploadTap`: its digest and size, known once the content ended. */
export interface StreamedBlob {
  readonly digest: Digest;
  readonly size: number;
}

export interface UploadTapOptions extends OperationOptions {
  /**
   * The same bytes, hashed by the caller before they reach the tap (a layer build hashes its
   * blob anyway): read once the content has ended, instead of hashing every byte a second time.
   */
  readonly hashed?: HashedBytes | undefined;
}

/** Bytes the tap holds for the network before it waits (the producer then waits too). */
const TAP_BUFFER = 4 * 1024 * 1024;

/**
 * A pass-through stream that uploads what flows through it as a new blob, while it flows: for
 * content whose digest is known only at its end, such as a layer being compressed, which can
 * then reach the registry while it is produced instead of after.
 *
 * Placed in a pipeline before the content's other destination (a file, say), it passes every
 * chunk on unchanged and also sends it to the registry: `POST` opens a session (retried, nothing
 * is sent yet), the bytes go out in one streamed `PATCH` (or in `Content-Range` chunks with the
 * client's `uploadChunkSize`, resumed from the registry's `Range` after a dropped connection),
 * hashed on the way, and once the input ends `PUT ?digest=` commits them under the digest of
 * exactly what was sent, which the registry checks against the bytes it received. `done`
 * settles with the blob, or with the failure.
 *
 * The upload is a side effect: it never fails or stops the stream. A chunk passes on once the
 * upload has accepted it (so a slow network slows the producer, and memory stays bounded); once
 * the upload has failed, chunks pass on at once and `done` rejects (`UPLOAD_INTERRUPTED` when the
 * bytes already sent cannot be completed: they are not kept to be sent again). The caller then
 * pushes the content from where the other destination stored it, as it would have without the
 * tap. Destroying the tap (the pipeline failed or was aborted) cancels the session. There is no
 * `HEAD` or mount first, since the digest is not known: use the tap for new content.
 */
export class BlobUploadTap extends Transform {
  /** The uploaded blob, once committed; rejects when the upload failed (never unhandled). */
  readonly done: Promise<StreamedBlob>;
  /** Hashes what passes, unless the caller already does (`hashed`). */
  readonly #hashed: HashedBytes | undefined;
  readonly #digester: Digester | undefined;
  /** The request body: what the tap has handed to the upload and the upload has not sent yet. */
  readonly #body = new PassThrough({ highWaterMark: TAP_BUFFER });
  #blob: StreamedBlob | undefined;
  #failed = false;
  /** Called when the upload stops taking bytes: a chunk waiting for room passes on. */
  #wake: (() => void) | undefined;

  constructor(repo: RegistryRepository, options: UploadTapOptions = {}) {
    super();
    this.#hashed = options.hashed;
    this.#digester = options.hashed === undefined ? new Digester('sha256') : undefined;
    // The body's own errors are the upload's, reported through `done`.
    this.#body.on('error', () => undefined);
    this.#body.on('close', () => this.#stopTaking());
    this.done = this.#upload(repo, options.signal);
    this.done.catch(() => undefined);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#digester?.update(chunk);
    if (this.#failed || this.#body.destroyed || this.#body.write(chunk)) {
      callback(null, chunk);
      return;
    }
    const release = (): void => {
      this.#body.off('drain', release);
      this.#wake = undefined;
      callback(null, chunk);
    };
    this.#wake = release;
    this.#body.on('drain', release);
  }

  override _flush(callback: TransformCallback): void {
    const hash = this.#hashed ?? this.#digester!;
    this.#blob = { digest: hash.digest(), size: hash.size };
    this.#body.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Cut short: the upload must not commit a prefix. Its request fails and the session is cancelled.
    if (this.#blob === undefined) this.#body.destroy(error ?? new Error('the content of a streamed upload was cut short'));
    callback(error);
  }

  #stopTaking(): void {
    this.#failed = true;
    this.#wake?.();
  }

  async #upload(repo: RegistryRepository, signal: AbortSignal | undefined): Promise<StreamedBlob> {
    const client = repo.client;
    try {
      return await client.limitUpload(async () => {
        const context = new UploadContext(repo, undefined, signal);
        // Cut short while waiting for an upload slot: no session to open.
        if (this.#body.destroyed) throw this.#body.errored ?? new Error(`upload to ${repo.name}: the content was cut short`);
        const location = await client.withRetries(`start upload to ${repo.name}`, () => context.open(), signal);
        const chunked = client.uploadChunkSize > 0;
        try {
          // Chunked: resumed from the registry's Range while the session lives, cancelled otherwise.
          if (chunked) await context.chunked(this.#body, client.uploadChunkSize, location);
          else await context.streamed(this.#body, location);
        } catch (err) {
          if (!chunked) await context.cancel(context.lastLocation ?? location);
          throw isTemporaryError(err) ? context.interrupted(err) : err;
        }
        const blob = this.#blob;
        // The body ends only through _flush, which names the blob first; anything else destroyed it.
        if (blob === undefined) throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `upload ${context.what}: the content ended without its digest`, registry: repo.registry });
        context.identify({ mediaType: 'application/octet-stream', digest: blob.digest, size: blob.size });
        await client.withRetries(`commit upload of ${context.what}`, (attempt) => context.commit(context.lastLocation, undefined, attempt > 1), signal);
        client.emit({ type: 'blob-done', registry: repo.registry, repository: repo.name, direction: 'push', digest: blob.digest, size: blob.size });
        return blob;
      });
    } catch (err) {
      this.#body.destroy();
      this.#stopTaking();
      throw err;
    }
  }
}

/** Counts bytes flowing through and reports the running total. */
class ByteCounter extends Transform {
  #total = 0;
  constructor(private readonly onBytes: (total: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#total += chunk.length;
    this.onBytes(this.#total);
    callback(null, chunk);
  }
}

/** Splits a byte stream into buffers of exactly `size` bytes (the last may be shorter). */
export async function* chunksOf(stream: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const piece of stream) {
    let rest = piece;
    while (have + rest.length >= size) {
      const take = size - have;
      parts.push(rest.subarray(0, take));
      yield Buffer.concat(parts, size);
      parts = [];
      have = 0;
      rest = rest.subarray(take);
    }
    if (rest.length > 0) {
      parts.push(rest);
      have += rest.length;
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}

function destroyContent(content: BlobContent): void {
  if (content instanceof Readable) content.destroy();
}

/**
 * The whole content in memory, verified against `desc` (an opener is called once). Bytes read to
 * the end of a stream that verifies `desc` itself are not hashed again.
 */
async function readVerified(content: BlobContent, desc: Descriptor): Promise<Uint8Array> {
  const what = `blob ${desc.digest}`;
  if (content instanceof Uint8Array) {
    verifyBytes(content, { digest: desc.digest, size: desc.size }, what);
    return content;
  }
  const stream = await openReadable(content);
  const selfVerifying = isVerifyingStreamFor(stream, desc);
  const bytes = await readAtMost(stream, desc.size, what);
  if (!selfVerifying) verifyBytes(bytes, { digest: desc.digest, size: desc.size }, what);
  return bytes;
}

/** Reads content into memory, refusing (with `SizeMismatchError`) more than `limit` bytes. */
export async function readAtMost(content: BlobContent, limit: number, what: string): Promise<Uint8Array> {
  if (content instanceof Uint8Array) {
    if (content.byteLength > limit) throw new SizeMismatchError(limit, content.byteLength, what);
    return content;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const stream = toReadable(content);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      throw new SizeMismatchError(limit, size, what);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}
