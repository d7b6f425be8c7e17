import { createHash } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import { mkdir, open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../oci/index.js';
import { inputDigest } from './key.js';

/**
 * Remembers the SHA-256 of files by their stat, so an unchanged file of the build context is not
 * read again: a file is hashed again when its device, inode, size, mtime or ctime (nanoseconds)
 * differ from what was recorded.
 *
 * The rule, against BuildKit's: fsutil treats a file as unchanged when its size and mtime match.
 * Here the ctime must match too, and the ctime cannot be set by a program (`utimes` itself moves
 * it to now), so rewriting a file and putting its old mtime back is still noticed. Timestamps are
 * only as fine as the kernel's coarse clock (a few milliseconds), so a file changed twice within
 * one tick could keep its ctime: as git does for its "racily clean" entries, a hash is recorded
 * only for a file whose ctime is older than `RACY_WINDOW_NS` at the time it was read; younger
 * files are read every time until they settle.
 *
 * One index file per root directory (the context), written whole to a temporary name and renamed
 * over the old one: concurrent builds never see a torn index, and when two write, the last one
 * wins, which only costs the other's new hashes being computed again.
 */

const RACY_WINDOW_NS = 2_000_000_000n;

interface Recorded {
  readonly stat: string;
  readonly sha256: string;
}

export class StatIndex {
  readonly #file: string;
  readonly #entries: Map<string, Recorded>;
  #dirty = false;
  /** Files read (hashed) and files answered from the index, for tests and events. */
  hashed = 0;
  reused = 0;

  private constructor(file: string, entries: Map<string, Recorded>) {
    this.#file = file;
    this.#entries = entries;
  }

  /** Opens (or starts) the index of the files under `root`, kept in `dir`. */
  static async open(dir: string, root: string): Promise<StatIndex> {
    const file = join(dir, `${inputDigest(root)}.json`);
    const entries = new Map<string, Recorded>();
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as { v?: unknown; files?: unknown };
      if (parsed.v === 1 && typeof parsed.files === 'object' && parsed.files !== null) {
        for (const [path, value] of Object.entries(parsed.files as Record<string, unknown>)) {
          if (Array.isArray(value) && typeof value[0] === 'string' && typeof value[1] === 'string') entries.set(path, { stat: value[0], sha256: value[1] });
        }
      }
    } catch {
      // Missing or unreadable: start empty (an index is only ever a shortcut).
    }
    return new StatIndex(file, entries);
  }

  /** The SHA-256 (hex) of the regular file at `path`, whose `lstat` is `st`. */
  async sha256(path: string, st: BigIntStats): Promise<string> {
    const stat = statSignature(st);
    const known = this.#entries.get(path);
    if (known !== undefined && known.stat === stat) {
      this.reused++;
      return known.sha256;
    }
    const now = BigInt(Date.now()) * 1_000_000n;
    const sha256 = await hashFile(path);
    this.hashed++;
    if (st.ctimeNs < now - RACY_WINDOW_NS) {
      this.#entries.set(path, { stat, sha256 });
      this.#dirty = true;
    } else if (known !== undefined) {
      this.#entries.delete(path);
      this.#dirty = true;
    }
    return sha256;
  }

  /** Writes the index if it learnt anything (temporary file, then rename). */
  async save(): Promise<void> {
    if (!this.#dirty) return;
    const files: Record<string, [string, string]> = {};
    for (const [path, recorded] of this.#entries) files[path] = [recorded.stat, recorded.sha256];
    await mkdir(join(this.#file, '..'), { recursive: true });
    // An index can be rebuilt by hashing again: no flush to disk.
    await writeFileAtomic(this.#file, JSON.stringify({ v: 1, files }), { durable: false });
    this.#dirty = false;
  }
}

function statSignature(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** Read buffers for hashing, reused: a fresh megabyte per read was most of a cold key's GC and page faults. */
const spareBuffers: Buffer[] = [];
const READ_SIZE = 1024 * 1024;

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  const buffer = spareBuffers.pop() ?? Buffer.allocUnsafeSlow(READ_SIZE);
  const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, READ_SIZE, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
    // Kept for the next file only up to the hashing concurrency any caller uses.
    if (spareBuffers.length < 16) spareBuffers.push(buffer);
  }
  return hash.digest('hex');
}
