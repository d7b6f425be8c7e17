import type { Readable, Writable } from 'node:stream';

/** What a command may touch: everything is passed in, so commands are testable in-process. */
export interface CliIO {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: Readable;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly signal?: AbortSignal;
}

export interface Command {
  readonly name: string;
  /** One line for `stevedore --help`. */
  readonly summary: string;
  /** The full usage text for `stevedore NAME --help`. */
  readonly usage: string;
  /** Returns the process exit code. Bad arguments throw `UsageError`. */
  run(args: string[], io: CliIO): Promise<number>;
}

/** Bad command-line input: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
