import { StevedoreError } from '../errors.js';

/**
 * The errors of src/layers. Each class has one stable `code`; the finer reason is data
 * (`reason`, `limit`), so callers switch on the code and tests can pin the reason.
 */

/** Why an archive entry was refused as unsafe. */
export type UnsafeReason =
  /** The entry name (or a hardlink target) has a `..` component. */
  | 'path-traversal'
  /** Resolving the entry's parent directories followed too many symlinks. */
  | 'symlink-loop'
  /** A character or block device, with `allowDevices` off. */
  | 'device'
  /** A name holds a NUL byte or is otherwise unusable as a path. */
  | 'invalid-name';

/**
 * An archive entry would write outside the extraction root or create something the caller did
 * not allow. Nothing of the entry has been written when this is thrown.
 */
export class UnsafeArchiveError extends StevedoreError {
  override name = 'UnsafeArchiveError';
  constructor(
    readonly reason: UnsafeReason,
    readonly entry: string,
    detail: string,
  ) {
    super('UNSAFE_ARCHIVE', `unsafe archive entry ${JSON.stringify(entry)}: ${detail}`);
  }
}

/** The archive limits of `ArchiveLimits`, by name. */
export type ArchiveLimitName = 'maxEntries' | 'maxEntrySize' | 'maxTotalBytes' | 'maxPathLength' | 'maxHeaderSize';

/** An archive exceeded one of the configured limits (a decompression or tar bomb, or a mistake). */
export class ArchiveLimitError extends StevedoreError {
  override name = 'ArchiveLimitError';
  constructor(
    readonly limit: ArchiveLimitName,
    readonly value: number,
    readonly entry: string | undefined,
  ) {
    super('ARCHIVE_LIMIT_EXCEEDED', `archive exceeds ${limit} (${value})${entry === undefined ? '' : ` at entry ${JSON.stringify(entry)}`}`);
  }
}

/** A tar stream is malformed: bad checksum, truncated, an unsupported entry type, a bad PAX record. */
export class InvalidArchiveError extends StevedoreError {
  override name = 'InvalidArchiveError';
  constructor(
    reason: string,
    readonly entry?: string,
    /** Byte offset of the offending header in the uncompressed tar stream, when known. */
    readonly offset?: number,
    options?: { cause?: unknown },
  ) {
    super(
      'INVALID_ARCHIVE',
      `invalid tar archive${entry === undefined ? '' : ` at entry ${JSON.stringify(entry)}`}${offset === undefined ? '' : ` (offset ${offset})`}: ${reason}`,
      options,
    );
  }
}

/** Compressed layer data could not be decompressed (corrupt or truncated gzip or zstd). */
export class CompressionError extends StevedoreError {
  override name = 'CompressionError';
  constructor(
    readonly compression: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('INVALID_COMPRESSED_DATA', `corrupt ${compression} data: ${reason}`, options);
  }
}

/** A layer source could not produce an entry: a file changed while it was read, an unusable name. */
export class LayerSourceError extends StevedoreError {
  override name = 'LayerSourceError';
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('LAYER_SOURCE', `cannot archive ${JSON.stringify(path)}: ${reason}`, options);
  }
}

/** One thing `validateImage` found wrong, located by the descriptor it concerns. */
export interface ValidationProblem {
  /** A stable kind, e.g. `layer-digest`, `diff-id`, `layer-count`, `media-type`. */
  readonly kind: string;
  /** The digest of the manifest, config or layer the problem is about. */
  readonly digest: string;
  readonly message: string;
}

/** `validateImage` found at least one problem; `problems` lists all of them, in the order found. */
export class ImageValidationError extends StevedoreError {
  override name = 'ImageValidationError';
  constructor(readonly problems: readonly ValidationProblem[]) {
    const first = problems[0];
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem${problems.length > 2 ? 's' : ''})` : '';
    super('INVALID_IMAGE', `invalid image: ${first ? `${first.kind}: ${first.message}` : 'unknown problem'}${more}`);
  }
}
