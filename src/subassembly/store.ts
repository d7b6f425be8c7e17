import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { Digester, digestAlgorithm, digestHex, digestSchema, syncDirectory, writeFileAtomic, type Digest } from '../oci/index.js';
import { subassemblyManifestSchema, type SubassemblyManifest } from './manifest.js';

export type SubassemblyPhase = 'CREATING' | 'AVAILABLE' | 'UNAVAILABLE';

/** What the directory keeps about one source image (by its digest), in `records/<alg>/<hex>.json`. */
export interface SubassemblyRecord {
  readonly phase: SubassemblyPhase;
  readonly message: string;
  readonly sourceDigest: Digest;
  /** The reference the subassembly was first asked for. */
  readonly reference: string;
  /** AVAILABLE only. */
  readonly manifest?: SubassemblyManifest | undefined;
  /** The registry blob URL of the file, when a copy was pushed to a repository. */
  readonly blobUrl?: string | undefined;
}

const RECORD_VERSION = 1;

const recordSchema = z
  .object({
    version: z.literal(RECORD_VERSION),
    phase: z.enum(['CREATING', 'AVAILABLE', 'UNAVAILABLE']),
    message: z.string(),
    sourceDigest: digestSchema,
    reference: z.string(),
    manifest: subassemblyManifestSchema.optional(),
    blobUrl: z.string().optional(),
  })
  .strict()
  .refine((r) => r.phase !== 'AVAILABLE' || r.manifest !== undefined, { message: 'an AVAILABLE record carries its manifest' });

/** What `open` found in a record file. */
export type StoredState =
  | { readonly kind: 'record'; readonly record: SubassemblyRecord }
  /** The file exists but does not parse (a foreign or damaged file: never half-written by us). */
  | { readonly kind: 'unreadable'; readonly sourceDigest: Digest; readonly reason: string };

/** The result of checking a stored file against its digest and size. */
export type FileCheck = 'ok' | 'missing' | 'corrupt';

const RECORD_NAME = /^([0-9a-f]{64}|[0-9a-f]{128})\.json$/;

/**
 * The local store of a `SubassemblyManager`, content-addressed:
 *
 *   blobs/<alg>/<hex>            subassembly files, by their digest
 *   records/<alg>/<hex>.json     one record per source image, by the source's digest
 *   tmp/                         files on their way in (emptied on open)
 *
 * Everything is written to `tmp/`, flushed to disk (fsync), renamed into place and the directory
 * flushed, so a crash leaves either the old state or the new one, never a half-written file under
 * its final name. Files are nevertheless verified when the directory is opened (`checkFile`): a
 * disk can lose or damage data behind our back.
 */
export class SubassemblyDirectory {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  static async open(root: string): Promise<SubassemblyDirectory> {
    const store = new SubassemblyDirectory(root);
    await rm(join(root, 'tmp'), { recursive: true, force: true });
    for (const dir of ['blobs/sha256', 'blobs/sha512', 'records/sha256', 'records/sha512', 'tmp']) await mkdir(join(root, dir), { recursive: true });
    return store;
  }

  filePath(digest: Digest): string {
    return join(this.root, 'blobs', digestAlgorithm(digest), digestHex(digest));
  }

  recordPath(sourceDigest: Digest): string {
    return join(this.root, 'records', digestAlgorithm(sourceDigest), `${digestHex(sourceDigest)}.json`);
  }

  /** Every record file, parsed and checked against its schema. */
  async records(): Promise<StoredState[]> {
    const states: StoredState[] = [];
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const dir = join(this.root, 'records', algorithm);
      for (const name of await readdir(dir)) {
        const match = RECORD_NAME.exec(name);
        if (match === null) continue;
        const sourceDigest = `${algorithm}:${match[1]!}` as Digest;
        try {
          const parsed = recordSchema.parse(JSON.parse(await readFile(join(dir, name), 'utf8')));
          if (parsed.sourceDigest !== sourceDigest) throw new Error(`it describes ${parsed.sourceDigest}`);
          const { version: _version, ...record } = parsed;
          // zod types absent keys as `| undefined`; JSON has no undefined, so none is present.
          states.push({ kind: 'record', record: record as SubassemblyRecord });
        } catch (err) {
          states.push({ kind: 'unreadable', sourceDigest, reason: (err as Error).message.split('\n')[0]! });
        }
      }
    }
    return states;
  }

  async writeRecord(record: SubassemblyRecord): Promise<void> {
    const json = JSON.stringify({ version: RECORD_VERSION, ...record });
    await this.#writeAtomically(this.recordPath(record.sourceDigest), Buffer.from(json));
  }

  /**
   * Moves a finished file (hashed as it was written) into `blobs/` under its digest: flushed,
   * then renamed (copied through `tmp/` when `path` is on another filesystem).
   */
  async installFile(path: string, digest: Digest): Promise<void> {
    const destination = this.filePath(digest);
    await syncFile(path);
    try {
      await rename(path, destination);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      const temp = this.#tempPath(destination);
      try {
        await copyFile(path, temp);
        await syncFile(temp);
        await rename(temp, destination);
      } catch (copyErr) {
        await rm(temp, { force: true });
        throw copyErr;
      }
    }
    await syncDirectory(dirname(destination));
  }

  /** Whether the file of `digest` is there, `size` bytes long, and hashes to `digest`. */
  async checkFile(digest: Digest, size: number): Promise<FileCheck> {
    const path = this.filePath(digest);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined || !info.isFile()) return 'missing';
    if (info.size !== size) return 'corrupt';
    const digester = new Digester(digestAlgorithm(digest));
    for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) digester.update(chunk as Buffer);
    return digester.digest() === digest ? 'ok' : 'corrupt';
  }

  async removeFile(digest: Digest): Promise<void> {
    await rm(this.filePath(digest), { force: true });
  }

  /**
   * A stored file, whole or the inclusive byte range `range` (its end clamped to the file),
   * with the file's full size. The stream opens the file only when first read, so a caller that
   * only wanted the size (to answer 416) may drop it. Undefined when the file is not stored.
   */
  async openFile(digest: Digest, range?: { start: number; end: number }): Promise<{ size: number; stream: NodeJS.ReadableStream } | undefined> {
    const path = this.filePath(digest);
    const info = await stat(path).catch(() => undefined);
    if (info === undefined || !info.isFile()) return undefined;
    const size = info.size;
    if (range !== undefined) {
      const { start, end } = range;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || start >= size) {
        throw new RangeError(`range ${start}-${end} is not satisfiable for a file of ${size} bytes`);
      }
    }
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? size - 1, size - 1);
    return { size, stream: Readable.from(readRange(path, start, end), { objectMode: false }) };
  }

  #tempPath(destination: string): string {
    return join(this.root, 'tmp', `${basename(destination)}.${randomBytes(6).toString('hex')}`);
  }

  /** Temporary files go to `tmp/` (emptied at open), so a crash leaves nothing beside a record. */
  async #writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
    await writeFileAtomic(path, bytes, { tempPath: this.#tempPath(path) });
  }
}

/** Reads bytes `start..end` (inclusive) of a file, opening it on the first read. */
async function* readRange(path: string, start: number, end: number): AsyncGenerator<Uint8Array> {
  if (end < start) return;
  const handle = await open(path, 'r');
  try {
    const chunkSize = 1024 * 1024;
    for (let position = start; position <= end; ) {
      const length = Math.min(chunkSize, end - position + 1);
      const buffer = Buffer.allocUnsafe(length);
      const { bytesRead } = await handle.read(buffer, 0, length, position);
      if (bytesRead === 0) throw new Error(`${path} ended at byte ${position}, before byte ${end}`);
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

