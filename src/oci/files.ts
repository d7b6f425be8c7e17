import { randomBytes } from 'node:crypto';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

// Writing files so that a reader, or a machine that crashed, sees either the old content or the
// whole new one: shared by the stores that keep state on disk (OCI layouts, subassemblies, the
// build cache).

/** A random suffix for temporary names next to the file they become. */
export function tempSuffix(): string {
  return randomBytes(8).toString('hex');
}

/** fsync a directory so that a rename inside it survives a crash. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes all of `chunk` at the handle's position (a write may take less than asked). */
export async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

export interface WriteFileAtomicOptions {
  /** The temporary file (default: beside `path`); it must be on `path`'s filesystem. */
  readonly tempPath?: string | undefined;
  /**
   * Default true: the file and then its directory are flushed, so the new content survives a
   * crash. False for content that can be derived again (a cache): still all-or-nothing for
   * readers, without the cost of the flushes.
   */
  readonly durable?: boolean | undefined;
}

/** Writes `path` so that readers see either the old or the whole new content. */
export async function writeFileAtomic(path: string, data: Uint8Array | string, options: WriteFileAtomicOptions = {}): Promise<void> {
  const durable = options.durable ?? true;
  const temp = options.tempPath ?? `${path}.tmp-${tempSuffix()}`;
  const handle = await open(temp, 'wx', 0o644);
  try {
    await writeAll(handle, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) await handle.sync();
    await handle.close();
    await rename(temp, path);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  }
  if (durable) await syncDirectory(dirname(path));
}
