import { spawn } from 'node:child_process';
import { AbortedError } from '../../errors.js';
import { HostToolError } from './errors.js';

/** How much of a tool's stderr (and stdout, when collected) is kept: enough for a diagnosis. */
const KEEP_BYTES = 16 * 1024;

export interface ToolResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunToolOptions {
  readonly input?: string | Uint8Array | undefined;
  readonly cwd?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Keep at most this many bytes of stdout (default 16 KiB). */
  readonly maxStdout?: number | undefined;
}

/** Keeps the last `limit` bytes written to it. */
export class TailBuffer {
  #chunks: Buffer[] = [];
  #size = 0;
  constructor(private readonly limit: number = KEEP_BYTES) {}

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#size += chunk.byteLength;
    while (this.#size > this.limit && this.#chunks.length > 1) this.#size -= this.#chunks.shift()!.byteLength;
  }

  toString(): string {
    const all = Buffer.concat(this.#chunks);
    return all.subarray(Math.max(0, all.byteLength - this.limit)).toString('utf8');
  }
}

/**
 * Runs a short-lived host tool to completion with an empty environment (plus PATH) and collects
 * its output. Never throws for a non-zero exit: callers decide what a failure means. An abort
 * kills the tool and rejects with `AbortedError`.
 */
export function runTool(file: string, args: readonly string[], options: RunToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new AbortedError('operation aborted', { cause: options.signal.reason }));
      return;
    }
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const stdout = new TailBuffer(options.maxStdout ?? KEEP_BYTES);
    const stderr = new TailBuffer();
    child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
    const onAbort = (): void => {
      child.kill('SIGKILL');
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new HostToolError(file, err.message, { cause: err }));
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (options.signal?.aborted) reject(new AbortedError('operation aborted', { cause: options.signal.reason }));
      else resolve({ code, signal, stdout: stdout.toString(), stderr: stderr.toString() });
    });
    if (options.input !== undefined) {
      // A tool that exits early closes its stdin: that is its answer, not ours to report.
      child.stdin!.on('error', () => {});
      child.stdin!.end(options.input);
    }
  });
}

/** Runs a tool and throws `HostToolError` unless it exits 0. */
export async function runToolChecked(file: string, args: readonly string[], options: RunToolOptions = {}): Promise<ToolResult> {
  const result = await runTool(file, args, options);
  if (result.code !== 0) {
    const how = result.signal === null ? `exit status ${result.code}` : `signal ${result.signal}`;
    throw new HostToolError(file, `${how}${result.stderr.trim() ? `: ${result.stderr.trim()}` : ''}`);
  }
  return result;
}
