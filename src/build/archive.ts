import { spawn } from 'node:child_process';
import { constants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { AbortedError } from '../errors.js';
import { decompress, extractLayer, InvalidArchiveError, readTar, type ExtractResult } from '../layers/index.js';
import { HostToolError } from './run/index.js';

/**
 * ADD's automatic unpacking of local archives (BuildKit's `isArchivePath` + `chrootarchive.Untar`):
 * a regular file is an archive when, once decompressed (gzip, bzip2, xz, zstd, or none), its
 * first tar header reads; anything else is copied as it is. gzip and zstd are decompressed in
 * process; bzip2 and xz by the system's `bzip2` and `xz`.
 */

export type ArchiveCompression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

const MAGIC: readonly (readonly [ArchiveCompression, readonly number[]])[] = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

function sniff(head: Uint8Array): ArchiveCompression {
  for (const [name, magic] of MAGIC) if (magic.every((b, i) => head[i] === b)) return name;
  return 'none';
}

async function readHead(path: string, length: number): Promise<Uint8Array> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, 0);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The file's bytes, decompressed. */
export async function* decompressedFile(path: string, compression: ArchiveCompression, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
  if (compression === 'bzip2' || compression === 'xz') {
    yield* externalDecompress(compression === 'bzip2' ? 'bzip2' : 'xz', path, signal);
    return;
  }
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
  try {
    yield* decompress(stream, compression === 'none' ? 'none' : compression);
  } finally {
    stream.destroy();
  }
}

/** `bzip2 -dc FILE` or `xz -dc FILE`: their standard output, failing on a non-zero exit. */
async function* externalDecompress(tool: 'bzip2' | 'xz', path: string, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  const child = spawn(tool, ['-dc', '--', path], { stdio: ['ignore', 'pipe', 'pipe'], ...(signal === undefined ? {} : { signal }) });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4096);
  });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Uint8Array;
    const { code, error } = await exited;
    finished = true;
    if (signal?.aborted) throw new AbortedError('decompression aborted', { cause: signal.reason });
    // A missing tool is the host's problem, not the file's: never mistake it for "not an archive".
    if (error !== undefined) throw new HostToolError(tool, `cannot run it to decompress ${path} (${error.message}); install ${tool === 'xz' ? 'xz-utils' : 'bzip2'}`, { cause: error });
    if (code !== 0) throw new InvalidArchiveError(`${tool} failed (exit ${code}): ${stderr.trim()}`);
  } finally {
    if (!finished) {
      child.kill('SIGKILL');
      await exited;
    }
  }
}

/**
 * The compression of `path` if it is a tar archive (plain or compressed), else undefined.
 * Only the first header is read.
 */
export async function detectArchive(path: string, signal?: AbortSignal): Promise<ArchiveCompression | undefined> {
  const compression = sniff(await readHead(path, 8));
  const decompressed = decompressedFile(path, compression, signal);
  try {
    for await (const entry of readTar(decompressed, { signal })) {
      void entry;
      return compression;
    }
    return undefined; // an empty archive (only end-of-archive blocks) is not one
  } catch (err) {
    if (err instanceof AbortedError || err instanceof HostToolError) throw err;
    return undefined;
  } finally {
    await decompressed.return(undefined);
  }
}

/** Unpacks the archive into `dir` (kept owners, modes and times; `..` and escapes refused). */
export async function extractArchive(path: string, compression: ArchiveCompression, dir: string, signal?: AbortSignal): Promise<ExtractResult> {
  return extractLayer({ content: () => decompressedFile(path, compression, signal) }, dir, { whiteouts: 'keep', ...(signal === undefined ? {} : { signal }) });
}
