import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, InvalidDigestError, SizeMismatchError } from './errors.js';

/** A validated content digest such as `sha256:e3b0…`. Only produced by the functions below. */
export type Digest = string & { readonly __digest: unique symbol };

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { sha256: 64, sha512: 128 };

/** Parses and validates a digest; throws `InvalidDigestError` naming what is wrong. */
export function parseDigest(input: string): Digest {
  const colon = input.indexOf(':');
  if (colon < 0) throw new InvalidDigestError(input, 'missing "algorithm:" prefix');
  const algorithm = input.slice(0, colon);
  const hex = input.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new InvalidDigestError(input, `unsupported algorithm ${JSON.stringify(algorithm)} (sha256 or sha512)`);
  }
  if (hex.length !== HEX_LENGTH[algorithm]) {
    throw new InvalidDigestError(input, `${algorithm} needs ${HEX_LENGTH[algorithm]} hex characters, got ${hex.length}`);
  }
  if (!/^[0-9a-f]+$/.test(hex)) throw new InvalidDigestError(input, 'encoded part must be lowercase hex');
  return input as Digest;
}

export function isDigest(input: unknown): input is Digest {
  if (typeof input !== 'string') return false;
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return digest.slice(0, digest.indexOf(':')) as DigestAlgorithm;
}

/** The hex part of a digest: the file name under `blobs/<algorithm>/`. */
export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1);
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/**
 * Bytes hashed as they pass (a `Digester`, a `DigestingStream`): the digest and size of what has
 * passed, final once the last byte has. Lets a consumer of the same bytes reuse the hash.
 */
export interface HashedBytes {
  digest(): Digest;
  readonly size: number;
}

/** An incremental hasher that also counts bytes; the digest is available once, at the end. */
export class Digester implements HashedBytes {
  readonly algorithm: DigestAlgorithm;
  #hash: Hash;
  #size = 0;
  #digest: Digest | undefined;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  update(chunk: Uint8Array): void {
    if (this.#digest !== undefined) throw new Error('Digester.update after digest()');
    this.#hash.update(chunk);
    this.#size += chunk.byteLength;
  }

  get size(): number {
    return this.#size;
  }

  digest(): Digest {
    this.#digest ??= `${this.algorithm}:${this.#hash.digest('hex')}` as Digest;
    return this.#digest;
  }
}

/**
 * A pass-through stream that hashes and counts what flows through it. `digest()` and `size`
 * are final once the stream has ended (lazy, like a streamed layer in go-containerregistry).
 */
export class DigestingStream extends Transform {
  readonly #digester: Digester;

  constructor(algorithm: DigestAlgorithm = 'sha256') {
    super();
    this.#digester = new Digester(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#digester.update(chunk);
    callback(null, chunk);
  }

  get size(): number {
    return this.#digester.size;
  }

  digest(): Digest {
    return this.#digester.digest();
  }
}

export interface ExpectedContent {
  readonly digest: Digest | string;
  /** When known, the exact size; the stream fails as soon as it is exceeded. */
  readonly size?: number;
}

/**
 * A pass-through stream that fails with `SizeMismatchError` as soon as more bytes than expected
 * arrive, and with `DigestMismatchError` or `SizeMismatchError` at EOF. Consumers must treat the
 * data as untrusted until the stream ends without error.
 *
 * The expectation is public (`expectedDigest`, `expectedSize`) so that a consumer handed a stream
 * that already verifies what it would verify can skip hashing the bytes a second time (see
 * `isVerifyingStreamFor`).
 */
export class VerifyingStream extends Transform {
  /** The digest the content must have (validated in the constructor). */
  readonly expectedDigest: Digest;
  /** The exact size the content must have, when it was given. */
  readonly expectedSize: number | undefined;
  readonly #digester: Digester;
  readonly #what: string;

  constructor(expected: ExpectedContent, what = 'blob') {
    super();
    this.expectedDigest = parseDigest(expected.digest);
    this.expectedSize = expected.size;
    this.#digester = new Digester(digestAlgorithm(this.expectedDigest));
    this.#what = what;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const limit = this.expectedSize;
    if (limit !== undefined && this.#digester.size + chunk.byteLength > limit) {
      callback(new SizeMismatchError(limit, this.#digester.size + chunk.byteLength, this.#what));
      return;
    }
    this.#digester.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const size = this.expectedSize;
    if (size !== undefined && this.#digester.size !== size) {
      callback(new SizeMismatchError(size, this.#digester.size, this.#what));
      return;
    }
    const actual = this.#digester.digest();
    if (actual !== this.expectedDigest) {
      callback(new DigestMismatchError(this.expectedDigest, actual, this.#what));
      return;
    }
    callback();
  }
}

/**
 * True when `content` is a `VerifyingStream` that checks exactly `expected` (same digest, same
 * size) and whose reading side nobody has started to consume: whoever reads it to its end then
 * sees every byte it verifies, so it may skip hashing them a second time (pull to a layout and
 * push from one would otherwise hash each byte twice). Such a consumer must still treat the bytes
 * as untrusted until the stream has ended without error, exactly as with its own verifier: commit
 * (rename, final PUT) only after that.
 *
 * A stream that has already handed out bytes (read, piped, flowing) is refused: its end would
 * vouch for bytes the new consumer never saw.
 */
export function isVerifyingStreamFor(content: unknown, expected: { readonly digest: Digest | string; readonly size: number }): content is VerifyingStream {
  return (
    content instanceof VerifyingStream &&
    content.expectedDigest === expected.digest &&
    content.expectedSize === expected.size &&
    !content.readableDidRead &&
    content.readableFlowing !== true &&
    !content.destroyed &&
    !content.readableEnded
  );
}

/** Checks bytes already in memory against an expected digest and size. */
export function verifyBytes(data: Uint8Array, expected: ExpectedContent, what = 'blob'): void {
  if (expected.size !== undefined && data.byteLength !== expected.size) {
    throw new SizeMismatchError(expected.size, data.byteLength, what);
  }
  const digest = parseDigest(expected.digest);
  const actual = digestOf(data, digestAlgorithm(digest));
  if (actual !== digest) throw new DigestMismatchError(digest, actual, what);
}
