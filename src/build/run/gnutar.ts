import { spawn } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError } from '../../errors.js';
import { readTar, type TarEntry } from '../../layers/index.js';
import { HostToolError } from './errors.js';
import { findExecutable } from './host.js';
import { TailBuffer, runTool } from './process.js';

/**
 * GNU tar as the reader of host trees. Node has no API for extended attributes, and overlayfs
 * keeps its opaque-directory marker in one (`trusted.overlay.opaque`), as file capabilities live
 * in `security.capability`. GNU tar (Essential on Debian and Ubuntu, standard everywhere glibc
 * is) reads both, together with the content, in one pass: its PAX output, parsed by
 * `readTar`, gives the entries with binary-safe xattrs.
 */

let gnuTar: Promise<string | undefined> | undefined;

/** The path of a GNU tar (1.29 or later: `--verbatim-files-from`, `--sort`), or undefined. */
export function findGnuTar(): Promise<string | undefined> {
  gnuTar ??= (async () => {
    const tar = findExecutable('tar');
    if (tar === undefined) return undefined;
    try {
      const { stdout } = await runTool(tar, ['--version']);
      const m = /^tar \(GNU tar\) (\d+)\.(\d+)/m.exec(stdout);
      if (m === null) return undefined;
      const [major, minor] = [Number(m[1]), Number(m[2])];
      return major > 1 || minor >= 29 ? tar : undefined;
    } catch {
      return undefined;
    }
  })();
  return gnuTar;
}

export async function requireGnuTar(): Promise<string> {
  const tar = await findGnuTar();
  if (tar === undefined) throw new HostToolError('tar', 'GNU tar 1.29 or later is required to read extended attributes (install the tar package)');
  return tar;
}

export interface GnuTarReadOptions {
  /** The tree to read. */
  readonly directory: string;
  /** Paths relative to `directory`, archived without recursion; absent: the whole tree, sorted. */
  readonly paths?: readonly string[] | undefined;
  /** Extended attribute names to record (globs as GNU tar takes them). */
  readonly xattrs: readonly string[];
  /**
   * Times in whole seconds, which is all a layer records: tar then writes no PAX time records,
   * about half the archive for a tree of small files (each would otherwise get a 512-byte
   * extended header for its fractional mtime, atime and ctime). A time a ustar field cannot
   * hold (before 1970, after 2242) comes out as 0 from tar, so such entries are stat'ed here.
   */
  readonly wholeSeconds?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * The entries of a host tree as GNU tar archives them (PAX format, numeric owners, xattrs as
 * asked). With `paths`, exactly those paths in that order; without, the whole tree depth-first
 * with names in byte order (`--sort=name`). Each entry's content must be read before the next is
 * requested. Stopping early kills tar; a tar failure (a file that vanished, a read error) ends
 * the iteration with `HostToolError`.
 */
export async function* gnuTarEntries(options: GnuTarReadOptions): AsyncGenerator<TarEntry, void, undefined> {
  const tar = await requireGnuTar();
  const args = ['--create', '--file=-', '--format=pax', '--numeric-owner', `--directory=${options.directory}`];
  if (options.xattrs.length > 0) args.push('--xattrs', ...options.xattrs.map((name) => `--xattrs-include=${name}`));
  if (options.wholeSeconds === true) args.push('--pax-option=delete=atime,delete=ctime,delete=mtime');
  if (options.paths === undefined) args.push('--sort=name', '.');
  else args.push('--no-recursion', '--null', '--verbatim-files-from', '--files-from=-');

  const child = spawn(tar, args, {
    env: { LC_ALL: 'C' },
    stdio: [options.paths === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  const stderr = new TailBuffer();
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', (err) => reject(new HostToolError('tar', err.message, { cause: err })));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  // Keep the rejection observed even when iteration stops before awaiting it.
  exited.catch(() => {});
  if (options.paths !== undefined) {
    child.stdin!.on('error', () => {});
    child.stdin!.end(options.paths.map((p) => (p === '' ? '.' : p)).join('\0') + (options.paths.length > 0 ? '\0' : ''));
  }
  const onAbort = (): void => {
    child.kill('SIGKILL');
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const failure = (code: number | null, signal: NodeJS.Signals | null, cause?: unknown): HostToolError =>
    new HostToolError('tar', `${signal === null ? `exit status ${code}` : `signal ${signal}`} while reading ${options.directory}: ${stderr.toString().trim()}`, { cause });
  let finished = false;
  try {
    const entries = readTar(child.stdout!, { signal: options.signal });
    if (options.wholeSeconds === true) yield* withTimesOutOfRange(entries, options.directory);
    else yield* entries;
    finished = true;
  } catch (err) {
    // A truncated archive usually means tar failed: its own message says why.
    child.kill('SIGKILL');
    const { code, signal } = await exited;
    if (options.signal?.aborted) throw new AbortedError('operation aborted', { cause: options.signal.reason });
    if (code !== null && code !== 0) throw failure(code, signal, err);
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    // Stopped early by the consumer: tar may still be writing.
    if (!finished) child.kill('SIGKILL');
    const { code, signal } = await exited;
    if (finished) {
      if (options.signal?.aborted) throw new AbortedError('operation aborted', { cause: options.signal.reason });
      if (code !== 0) throw failure(code, signal);
    }
  }
}

/** Entries whose mtime tar wrote as 0 (out of the ustar range, or really 0) get it from lstat. */
async function* withTimesOutOfRange(entries: AsyncIterable<TarEntry>, directory: string): AsyncGenerator<TarEntry, void, undefined> {
  for await (const entry of entries) {
    if (entry.header.mtime !== 0) {
      yield entry;
      continue;
    }
    const { mtimeMs } = await lstat(join(directory, entry.header.name));
    yield { header: { ...entry.header, mtime: Math.floor(mtimeMs / 1000) }, content: entry.content };
  }
}

/** Reads a complete (small) archive of header-only entries: directories' metadata and xattrs. */
export async function gnuTarHeaders(options: GnuTarReadOptions): Promise<TarEntry['header'][]> {
  const headers: TarEntry['header'][] = [];
  for await (const entry of gnuTarEntries(options)) headers.push(entry.header);
  return headers;
}

/**
 * Extracts a tar stream into `directory` with GNU tar, keeping owners, modes and the xattrs
 * matching `xattrs`. Used to create what Node cannot: whiteout devices and overlay xattrs.
 */
export async function gnuTarExtract(directory: string, archive: Uint8Array, xattrs: readonly string[], signal?: AbortSignal): Promise<void> {
  const tar = await requireGnuTar();
  const args = ['--extract', '--file=-', '--numeric-owner', '--same-owner', '--same-permissions', `--directory=${directory}`];
  if (xattrs.length > 0) args.push('--xattrs', ...xattrs.map((name) => `--xattrs-include=${name}`));
  const result = await runTool(tar, args, { input: archive, signal });
  if (result.code !== 0) throw new HostToolError('tar', `exit status ${result.code} while writing into ${directory}: ${result.stderr.trim()}`);
}
