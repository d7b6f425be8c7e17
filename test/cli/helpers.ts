import { PassThrough, Readable } from 'node:stream';
import type { CliIO } from '../../src/cli/command.js';
import { runCli } from '../../src/cli/run.js';

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  readonly cwd: string;
  readonly env?: Record<string, string>;
  readonly stdin?: string;
}

/** Runs the CLI in-process, as `stevedore ARGS` would, and captures what it prints. */
export function stevedore(args: string[], options: CliRunOptions): Promise<CliRun> {
  return captured((io) => runCli(args, io), options);
}

/** Runs one command's `run` directly (its errors are thrown, not printed) and captures its output. */
export function runCommand(command: { run(args: string[], io: CliIO): Promise<number> }, args: string[], options: CliRunOptions): Promise<CliRun> {
  return captured((io) => command.run(args, io), options);
}

async function captured(run: (io: CliIO) => Promise<number>, options: CliRunOptions): Promise<CliRun> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const io: CliIO = { stdout, stderr, stdin: Readable.from([Buffer.from(options.stdin ?? '')]), env: options.env ?? {}, cwd: options.cwd };
  const code = await run(io);
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}
