import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { digestHex, writeFileAtomic, type Descriptor, type Digest } from '../../oci/index.js';
import { parseCacheEntry, type CacheEntry } from './entry.js';
import type { CacheInput } from './key.js';

/**
 * The local step cache, in the cache directory:
 *
 *     steps/<2 hex>/<key>.json   entries (see entry.ts), their mtime is their last use
 *     blobs/sha256/<hex>         the layer blobs entries point at, content-addressed
 *     lineage/<id>.json          the inputs of the last run of each step, to explain misses
 *     stat/<root>.json           stat indexes of build contexts (stat-index.ts)
 *
 * Several processes may use one directory at once. Every file is written under a temporary name
 * and renamed into place, so a reader sees a whole entry or none; a blob is written before the
 * entry that names it. A reader that finds an entry but not its blob (pruned meanwhile) treats it
 * as a miss. A hit hard-links the blob into the build's own store, so pruning by another process
 * cannot take it away from a build that is using it. Pruning (least recently used first, down to
 * `maxBytes`) is done by one process at a time, under an `O_EXCL` lock file.
 */

/** A prune lock older than this is taken to belong to a process that died. */
const STALE_LOCK_MS = 10 * 60 * 1000;
/** Temporary files older than this are left-overs of a process that died. */
const STALE_TEMP_MS = 60 * 60 * 1000;

/** What a prune removed and kept. */
export interface PruneResult {
  readonly removedEntries: number;
  readonly removedBlobs: number;
  readonly freedBytes: number;
  /** Bytes of entries and blobs left. */
  readonly keptBytes: number;
}

const stores = new Map<string, LocalCacheStore>();

export class LocalCacheStore {
  readonly #flights = new Map<string, Promise<unknown>>();

  private constructor(readonly dir: string) {}

  /** The store of a cache directory; one per directory in a process (so flights are shared). */
  static of(cacheDir: string): LocalCacheStore {
    let store = stores.get(cacheDir);
    if (store === undefined) {
      store = new LocalCacheStore(cacheDir);
      stores.set(cacheDir, store);
    }
    return store;
  }

  #entryPath(key: string): string {
    return join(this.dir, 'steps', key.slice(0, 2), `${key}.json`);
  }

  blobPath(digest: Digest): string {
    return join(this.dir, 'blobs', 'sha256', digestHex(digest));
  }

  /** The entry of `key`, if there is a valid one; marks it used. */
  async get(key: string): Promise<CacheEntry | undefined> {
    const path = this.#entryPath(key);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
    const entry = parseCacheEntry(text, key);
    if (entry === undefined) return undefined;
    await touch(path);
    return entry;
  }

  async put(entry: CacheEntry): Promise<void> {
    await writeAtomically(this.#entryPath(entry.key), JSON.stringify(entry));
  }

  /**
   * Adds a blob the build made (at `source`, in the build's store) to the cache: hard-linked when
   * both are on one filesystem, else copied (to a temporary name, then renamed).
   */
  async addBlob(desc: Descriptor, source: string): Promise<void> {
    const target = this.blobPath(desc.digest);
    if (await hasFile(target, desc.size)) {
      await touch(target);
      return;
    }
    await mkdir(join(target, '..'), { recursive: true });
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await link(source, temp).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EXDEV' && err.code !== 'EPERM') throw err;
        await copyFile(source, temp);
      });
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  /**
   * Puts the cached blob at `target` (the build's store) for the rest of the build: a hard link
   * (a copy across filesystems). False when the blob is gone (pruned by another process).
   */
  async pinBlob(desc: Descriptor, target: string): Promise<boolean> {
    const source = this.blobPath(desc.digest);
    if (!(await hasFile(source, desc.size))) return false;
    await mkdir(join(target, '..'), { recursive: true });
    try {
      await link(source, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return true;
      if (code === 'ENOENT') return false;
      if (code !== 'EXDEV' && code !== 'EPERM') throw err;
      const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await copyFile(source, temp);
        await rename(temp, target);
      } catch (copyErr) {
        await rm(temp, { force: true });
        if (isMissing(copyErr)) return false;
        throw copyErr;
      }
    }
    await touch(source);
    return true;
  }

  /** The inputs of the last run of a step (by lineage id), if recorded. */
  async lineage(id: string): Promise<CacheInput[] | undefined> {
    try {
      const parsed = JSON.parse(await readFile(join(this.dir, 'lineage', `${id}.json`), 'utf8')) as unknown;
      if (!Array.isArray(parsed)) return undefined;
      const inputs: CacheInput[] = [];
      for (const item of parsed) {
        if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'string') return undefined;
        inputs.push({ name: item[0], value: item[1], ...(typeof item[2] === 'string' ? { label: item[2] } : {}) });
      }
      return inputs;
    } catch {
      return undefined;
    }
  }

  async setLineage(id: string, inputs: readonly CacheInput[]): Promise<void> {
    await writeAtomically(join(this.dir, 'lineage', `${id}.json`), JSON.stringify(inputs.map((i) => (i.label === undefined ? [i.name, i.value] : [i.name, i.value, i.label]))));
  }

  /**
   * Runs `fn` unless a call for the same key is running in this process, in which case it waits
   * for that one and then runs `fn` too (which then finds the other's entry): two builds of the
   * same step run it once.
   */
  async flight<T>(key: string, fn: () => Promise<T>): Promise<T> {
    for (;;) {
      const running = this.#flights.get(key);
      if (running === undefined) break;
      await running.catch(() => undefined);
    }
    const mine = fn();
    this.#flights.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.#flights.get(key) === mine) this.#flights.delete(key);
    }
  }

  /** Whether another call for `key` is running in this process right now. */
  busy(key: string): boolean {
    return this.#flights.has(key);
  }

  /**
   * Removes the least recently used entries, and the blobs no remaining entry names, until the
   * entries and blobs take at most `maxBytes`. Nothing used at or after `keepSince` (ms) is
   * removed: the running build's own entries stay even when they alone exceed the bound.
   * Undefined when another process is pruning.
   */
  async prune(maxBytes: number, keepSince: number): Promise<PruneResult | undefined> {
    const lock = join(this.dir, 'prune.lock');
    if (!(await takeLock(lock))) return undefined;
    try {
      return await this.#prune(maxBytes, keepSince);
    } finally {
      await rm(lock, { force: true });
    }
  }

  async #prune(maxBytes: number, keepSince: number): Promise<PruneResult> {
    const now = Date.now();
    const entries: { path: string; size: number; used: number; blob: string | undefined }[] = [];
    for (const shard of await listDir(join(this.dir, 'steps'))) {
      for (const name of await listDir(join(this.dir, 'steps', shard))) {
        const path = join(this.dir, 'steps', shard, name);
        const info = await stat(path).catch(() => undefined);
        if (info === undefined) continue;
        if (!name.endsWith('.json')) {
          if (now - info.mtimeMs > STALE_TEMP_MS) await rm(path, { force: true });
          continue;
        }
        const entry = parseCacheEntry(await readFile(path, 'utf8').catch(() => ''), name.slice(0, -'.json'.length));
        const blob = entry?.result.kind === 'blob' ? digestHex(entry.result.descriptor.digest) : undefined;
        entries.push({ path, size: info.size, used: info.mtimeMs, blob });
      }
    }
    const blobs = new Map<string, { size: number; used: number }>();
    const blobDir = join(this.dir, 'blobs', 'sha256');
    for (const name of await listDir(blobDir)) {
      const info = await stat(join(blobDir, name)).catch(() => undefined);
      if (info === undefined) continue;
      if (name.endsWith('.tmp')) {
        if (now - info.mtimeMs > STALE_TEMP_MS) await rm(join(blobDir, name), { force: true });
        continue;
      }
      blobs.set(name, { size: info.size, used: info.mtimeMs });
    }
    const references = new Map<string, number>();
    for (const e of entries) if (e.blob !== undefined) references.set(e.blob, (references.get(e.blob) ?? 0) + 1);

    let total = entries.reduce((sum, e) => sum + e.size, 0) + [...blobs.values()].reduce((sum, b) => sum + b.size, 0);
    let removedEntries = 0;
    let removedBlobs = 0;
    let freed = 0;
    const removeBlob = async (name: string): Promise<void> => {
      const blob = blobs.get(name);
      if (blob === undefined || blob.used >= keepSince) return;
      await rm(join(blobDir, name), { force: true });
      blobs.delete(name);
      total -= blob.size;
      freed += blob.size;
      removedBlobs++;
    };
    // Blobs no entry names (their entry was pruned by a process that died, or never written).
    for (const name of [...blobs.keys()]) if (!references.has(name) && total > maxBytes) await removeBlob(name);
    entries.sort((a, b) => a.used - b.used);
    for (const entry of entries) {
      if (total <= maxBytes) break;
      if (entry.used >= keepSince) break;
      await rm(entry.path, { force: true });
      total -= entry.size;
      freed += entry.size;
      removedEntries++;
      if (entry.blob !== undefined) {
        const left = (references.get(entry.blob) ?? 1) - 1;
        references.set(entry.blob, left);
        if (left === 0) await removeBlob(entry.blob);
      }
    }
    return { removedEntries, removedBlobs, freedBytes: freed, keptBytes: total };
  }
}

/** Cache entries can be made again: all-or-nothing for readers, without flushing to disk. */
async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFileAtomic(path, text, { durable: false });
}

/** Marks a file used now (its mtime is its last use); a file pruned meanwhile is ignored. */
async function touch(path: string): Promise<void> {
  const now = new Date();
  await utimes(path, now, now).catch((err: unknown) => {
    if (!isMissing(err)) throw err;
  });
}

async function hasFile(path: string, size: number): Promise<boolean> {
  try {
    const info = await stat(path);
    return info.isFile() && info.size === size;
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (isMissing(err)) return [];
    throw err;
  }
}

/** Creates `path` exclusively; a lock left by a dead process (older than STALE_LOCK_MS) is broken once. */
async function takeLock(path: string): Promise<boolean> {
  await mkdir(join(path, '..'), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const info = await stat(path).catch(() => undefined);
      if (info !== undefined && Date.now() - info.mtimeMs < STALE_LOCK_MS) return false;
      await rm(path, { force: true });
    }
  }
  return false;
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
