import { StevedoreError } from '../errors.js';

/**
 * The errors of the build engine. Every failure of a step reaches the caller as a
 * `BuildStepError` naming the Dockerfile line, whose `code` is the code of the underlying
 * problem (so callers switch on one field whatever the layer that failed) and whose `cause` is
 * the typed error itself. Problems found by the engine have their own classes below.
 */

/** Where in a Dockerfile a step comes from. Lines are 1-based and inclusive. */
export interface StepLocation {
  readonly file?: string | undefined;
  readonly startLine: number;
  readonly endLine: number;
}

/** The step an error happened in: its stage, its instruction as written, and where it is. */
export interface StepReference extends StepLocation {
  /** The stage's name, or `stage-N` for an unnamed one. */
  readonly stage: string;
  /** The instruction as written (continuation lines joined). */
  readonly instruction: string;
}

export function formatLocation(location: StepLocation): string {
  const lines = location.endLine > location.startLine ? `${location.startLine}-${location.endLine}` : `${location.startLine}`;
  return `${location.file ?? 'Dockerfile'}:${lines}`;
}

/**
 * A step of the build failed. `code` is the code of `cause` when it has one (a registry error,
 * a missing COPY source, a failed RUN...), so one switch covers every failure; `BUILD_STEP_FAILED`
 * otherwise. The message reads `Dockerfile:12: COPY app /app: <what went wrong>`.
 */
export class BuildStepError extends StevedoreError {
  override name = 'BuildStepError';
  readonly step: StepReference;

  constructor(step: StepReference, cause: unknown) {
    const code = cause instanceof StevedoreError ? cause.code : 'BUILD_STEP_FAILED';
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(code, `${formatLocation(step)}: ${oneLine(step.instruction)}: ${detail}`, { cause });
    this.step = step;
  }

  get file(): string | undefined {
    return this.step.file;
  }

  get startLine(): number {
    return this.step.startLine;
  }

  get endLine(): number {
    return this.step.endLine;
  }
}

export function isBuildStepError(err: unknown): err is BuildStepError {
  return err instanceof BuildStepError;
}

function oneLine(instruction: string): string {
  const first = instruction.split('\n')[0] ?? '';
  const short = first.length > 120 ? `${first.slice(0, 117)}...` : first;
  return instruction.includes('\n') ? `${short} ...` : short;
}

/** The build options are inconsistent or name something that does not exist. */
export class BuildOptionsError extends StevedoreError {
  override name = 'BuildOptionsError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('INVALID_BUILD_OPTIONS', message, options);
  }
}

/** A COPY or ADD source does not exist in the build context (or is excluded by .dockerignore) or in the stage it names. */
export class CopySourceNotFoundError extends StevedoreError {
  override name = 'CopySourceNotFoundError';
  constructor(
    readonly source: string,
    readonly where: string,
  ) {
    super('COPY_SOURCE_NOT_FOUND', `${JSON.stringify(source)} not found in ${where}`);
  }
}

/**
 * A COPY or ADD source leaves the build context: a `..` that climbs above its root, or a
 * symlink whose target lies outside it. Docker refuses both; a symlink met *inside* a copied
 * directory is copied as a symlink and never followed, so it cannot cause this.
 */
export class ContextEscapeError extends StevedoreError {
  override name = 'ContextEscapeError';
  constructor(
    readonly source: string,
    reason: string,
  ) {
    super('CONTEXT_ESCAPE', `${JSON.stringify(source)} is outside the build context: ${reason}`);
  }
}

/**
 * A copy cannot be carried out the way BuildKit's file operation would: a directory over a
 * file, a file over a directory, several sources into a destination that is not a directory.
 */
export class CopyConflictError extends StevedoreError {
  override name = 'CopyConflictError';
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super('COPY_CONFLICT', `${reason}: ${path}`);
  }
}

/** `COPY` (or `ADD`) with more than one source needs a destination directory ending in `/`. */
export class CopyDestinationError extends StevedoreError {
  override name = 'CopyDestinationError';
  constructor(instruction: 'COPY' | 'ADD', readonly destination: string) {
    super('COPY_DESTINATION_NOT_DIRECTORY', `when using ${instruction} with more than one source file, the destination must be a directory and end with a / (got ${JSON.stringify(destination)})`);
  }
}

/** A `--chown` or `USER` value that cannot be used (a malformed spec, a name the image lacks). */
export class OwnerSpecError extends StevedoreError {
  override name = 'OwnerSpecError';
  constructor(
    readonly spec: string,
    reason: string,
  ) {
    super('INVALID_OWNER', `invalid owner ${JSON.stringify(spec)}: ${reason}`);
  }
}

/** An `ADD` of a URL failed: the server's answer, a network error, or a redirect loop. */
export class RemoteSourceError extends StevedoreError {
  override name = 'RemoteSourceError';
  constructor(
    readonly url: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('REMOTE_SOURCE_FAILED', `cannot fetch ${url}: ${reason}`, options);
  }
}

/** `ADD --checksum=` did not match what was downloaded. */
export class ChecksumMismatchError extends StevedoreError {
  override name = 'ChecksumMismatchError';
  constructor(
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super('CHECKSUM_MISMATCH', `checksum of ${url} is ${actual}, but --checksum says ${expected}`);
  }
}

/** `ADD` of a git repository failed (clone, fetch, checkout, or a missing subdirectory). */
export class GitSourceError extends StevedoreError {
  override name = 'GitSourceError';
  constructor(
    readonly repository: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('GIT_SOURCE_FAILED', `git source ${repository}: ${reason}`, options);
  }
}

/** A RUN command exited with a non-zero status (or was killed by a signal). */
export class RunFailedError extends StevedoreError {
  override name = 'RunFailedError';
  constructor(
    readonly exitCode: number,
    readonly signal: string | undefined,
    /** The last lines the command printed, for the error display. */
    readonly outputTail: readonly string[],
  ) {
    const how = signal === undefined ? `exit code ${exitCode}` : `signal ${signal} (exit code ${exitCode})`;
    const tail = outputTail.length === 0 ? '' : `\n${outputTail.map((l) => `  | ${l}`).join('\n')}`;
    super('RUN_FAILED', `the command failed with ${how}${tail}`);
  }
}

/** A RUN mount could not be set up (a missing required secret, an unknown SSH agent id...). */
export class RunMountError extends StevedoreError {
  override name = 'RunMountError';
  constructor(message: string) {
    super('RUN_MOUNT_INVALID', message);
  }
}

/**
 * Writing the image to one of the outputs failed. `code` is the cause's code (a registry's
 * `DENIED`, `UNAUTHORIZED`...). No tag points at the image in that output: tags are written last.
 */
export class OutputError extends StevedoreError {
  override name = 'OutputError';
  constructor(
    readonly destination: string,
    cause: unknown,
  ) {
    const code = cause instanceof StevedoreError ? cause.code : 'OUTPUT_FAILED';
    super(code, `cannot write the image to ${destination}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
