import { StevedoreError } from '../errors.js';

/**
 * The stable codes of `DockerfileError`. Callers (and the gRPC adapter) switch on these; the
 * message is for people and may change.
 */
export const DockerfileErrorCode = {
  /** The file has no instruction at all (empty, or only comments and directives). */
  EMPTY: 'DOCKERFILE_EMPTY',
  /** A parser directive is repeated or has a bad value (`# escape=x`). */
  DIRECTIVE: 'DOCKERFILE_DIRECTIVE',
  /** A heredoc is unterminated or used where none is allowed. */
  HEREDOC: 'DOCKERFILE_HEREDOC',
  /** A JSON-form array holds something other than strings. */
  JSON: 'DOCKERFILE_JSON',
  /** An instruction keyword that does not exist. */
  UNKNOWN_INSTRUCTION: 'DOCKERFILE_UNKNOWN_INSTRUCTION',
  /** A `--flag` the instruction does not take. */
  UNKNOWN_FLAG: 'DOCKERFILE_UNKNOWN_FLAG',
  /** A known flag with a bad, missing or repeated value. */
  INVALID_FLAG: 'DOCKERFILE_INVALID_FLAG',
  /** Wrong number or shape of arguments. */
  INVALID_ARGUMENTS: 'DOCKERFILE_INVALID_ARGUMENTS',
  /** An instruction other than ARG before the first FROM. */
  NO_STAGE: 'DOCKERFILE_NO_STAGE',
  /** Variable expansion failed (`${x:?msg}`, bad substitution, unterminated quote). */
  EXPANSION: 'DOCKERFILE_EXPANSION',
  /** A `RUN --mount` specification is invalid. */
  INVALID_MOUNT: 'DOCKERFILE_INVALID_MOUNT',
  /** A platform (`FROM --platform`, the build options) is invalid. */
  INVALID_PLATFORM: 'DOCKERFILE_INVALID_PLATFORM',
  /** A base image or `--from` image reference is invalid. */
  INVALID_REFERENCE: 'DOCKERFILE_INVALID_REFERENCE',
  /** `--from=N` names a stage index that does not exist, or `--from` uses a variable. */
  INVALID_STAGE_REFERENCE: 'DOCKERFILE_INVALID_STAGE_REFERENCE',
  /** The requested target stage does not exist. */
  TARGET_NOT_FOUND: 'DOCKERFILE_TARGET_NOT_FOUND',
  /** Stages depend on each other in a cycle. */
  CIRCULAR_DEPENDENCY: 'DOCKERFILE_CIRCULAR_DEPENDENCY',
  /** An ONBUILD trigger (written here or inherited from a base image) is invalid. */
  INVALID_ONBUILD: 'DOCKERFILE_INVALID_ONBUILD',
  /** A lint rule failed and `# check=error=true` turns warnings into errors. */
  LINT: 'DOCKERFILE_LINT',
} as const;

export type DockerfileErrorCode = (typeof DockerfileErrorCode)[keyof typeof DockerfileErrorCode];

/** Lines are 1-based and inclusive. */
export interface SourceRange {
  readonly startLine: number;
  readonly endLine: number;
}

export interface SourceLocation extends Partial<SourceRange> {
  readonly file?: string | undefined;
}

/**
 * Everything wrong with a Dockerfile: a stable `code`, the file, the line range (0 when the
 * error is not tied to a line, e.g. a bad `--target`), and `reason`, the message without the
 * location prefix.
 */
export class DockerfileError extends StevedoreError {
  override name = 'DockerfileError';
  declare readonly code: DockerfileErrorCode;
  readonly file: string | undefined;
  readonly startLine: number;
  readonly endLine: number;
  readonly reason: string;

  constructor(code: DockerfileErrorCode, reason: string, location: SourceLocation = {}, options?: { cause?: unknown }) {
    const startLine = location.startLine ?? 0;
    const endLine = Math.max(location.endLine ?? startLine, startLine);
    super(code, formatMessage(reason, location.file, startLine, endLine), options);
    this.file = location.file;
    this.startLine = startLine;
    this.endLine = endLine;
    this.reason = reason;
  }


  /** This error placed at `range` (and `file`), unless it already has a line. */
  locate(range: SourceRange | undefined, file?: string): DockerfileError {
    if (this.startLine > 0 || range === undefined) {
      if (this.file !== undefined || file === undefined) return this;
      return new DockerfileError(this.code, this.reason, { file, startLine: this.startLine, endLine: this.endLine }, { cause: this.cause });
    }
    return new DockerfileError(this.code, this.reason, { file: this.file ?? file, ...range }, { cause: this.cause });
  }
}

function formatMessage(reason: string, file: string | undefined, start: number, end: number): string {
  if (start <= 0) return file === undefined ? reason : `${file}: ${reason}`;
  const lines = end > start ? `${start}-${end}` : `${start}`;
  return `${file ?? 'Dockerfile'}:${lines}: ${reason}`;
}

export function isDockerfileError(err: unknown): err is DockerfileError {
  return err instanceof DockerfileError;
}

/**
 * A BuildKit lint finding (https://docs.docker.com/reference/build-checks/), returned with the
 * result rather than printed: the library never logs.
 */
export interface DockerfileWarning extends SourceRange {
  /** The BuildKit rule name, e.g. `LegacyKeyValueFormat`. */
  readonly rule: string;
  readonly message: string;
  readonly url: string;
  readonly file?: string;
}

export function warning(rule: string, message: string, range: SourceRange, file?: string): DockerfileWarning {
  const slug = rule.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
  return {
    rule,
    message,
    url: `https://docs.docker.com/go/dockerfile/rule/${slug}/`,
    startLine: range.startLine,
    endLine: range.endLine,
    ...(file === undefined ? {} : { file }),
  };
}
