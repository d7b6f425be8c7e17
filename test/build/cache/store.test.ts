import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheKey, firstDifference, LocalCacheStore, StatIndex, type CacheEntry } from '../../../src/build/cache/index.js';
import { digestOf, OCI, type Descriptor } from '../../../src/oci/index.js';
import { tempDir } from '../../harness/index.js';

/** The cache's parts on their own: keys, miss reasons, the stat index, the local store and its pruning. */

let dir: { path: string; remove(): Promise<void> };

beforeEach(async () => {
  dir = await tempDir('stevedore-cache-store-');
});

afterEach(async () => {
  await dir.remove();
});

describe('keys', () => {
  it('are length-prefixed: moving bytes between names and values gives another key', () => {
    expect(cacheKey([{ name: 'ab', value: 'c' }])).not.toBe(cacheKey([{ name: 'a', value: 'bc' }]));
    expect(cacheKey([{ name: 'a', value: 'b' }, { name: 'c', value: 'd' }])).not.toBe(cacheKey([{ name: 'a', value: 'bc' }, { name: '', value: 'd' }]));
    expect(cacheKey([{ name: 'a', value: 'b' }])).toBe(cacheKey([{ name: 'a', value: 'b', label: 'labels are not keyed' }]));
    expect(cacheKey([])).toMatch(/^[0-9a-f]{64}$/);
  });

  it('a miss names the first input that changed, appeared or disappeared', () => {
    const before = [
      { name: 'base', value: '1', label: 'base image digest' },
      { name: 'file /a', value: 'x', label: 'COPY .: a' },
      { name: 'file /b', value: 'y', label: 'COPY .: b' },
    ];
    expect(firstDifference(before, before)).toBeUndefined();
    expect(firstDifference(before, [{ ...before[0]!, value: '2' }, ...before.slice(1)])).toBe('base image digest changed');
    expect(firstDifference(before, [before[0]!, before[1]!, { ...before[2]!, value: 'z' }])).toBe('COPY .: b changed');
    expect(firstDifference(before, [...before, { name: 'file /c', value: '', label: 'COPY .: c' }])).toBe('COPY .: c added');
    expect(firstDifference(before, before.slice(0, 2))).toBe('COPY .: b removed');
  });
});

describe('stat index', () => {
  it('reads a settled file once, notices a rewrite whose mtime was put back, and survives a reopen', async () => {
    const file = join(dir.path, 'f.txt');
    await writeFile(file, 'one\n');
    const mtime = 1_700_000_000;
    await utimes(file, mtime, mtime);
    // Only files older than the racy window are remembered (see stat-index.ts).
    await new Promise((resolve) => setTimeout(resolve, 2_100));
    const indexDir = join(dir.path, 'index');
    const index = await StatIndex.open(indexDir, dir.path);
    const st = await stat(file, { bigint: true });
    const first = await index.sha256(file, st);
    expect(await index.sha256(file, await stat(file, { bigint: true }))).toBe(first);
    expect({ hashed: index.hashed, reused: index.reused }).toEqual({ hashed: 1, reused: 1 });
    await index.save();

    const reopened = await StatIndex.open(indexDir, dir.path);
    expect(await reopened.sha256(file, await stat(file, { bigint: true }))).toBe(first);
    expect(reopened.reused).toBe(1);

    await writeFile(file, 'two\n');
    await utimes(file, mtime, mtime);
    const rewritten = await stat(file, { bigint: true });
    expect([rewritten.size, rewritten.mtimeNs]).toEqual([st.size, st.mtimeNs]);
    expect(await reopened.sha256(file, rewritten)).not.toBe(first);
    expect(reopened.hashed).toBe(1);
  });
});

/** An entry with a layer blob of `size` bytes, stored in `store`. */
async function putEntry(store: LocalCacheStore, name: string, size: number, blobContent = name): Promise<{ key: string; blob: Descriptor }> {
  const bytes = Buffer.alloc(size, blobContent);
  const blob: Descriptor = { mediaType: OCI.layerGzip, digest: digestOf(bytes), size };
  const source = join(dir.path, `source-${name}`);
  await writeFile(source, bytes);
  const key = cacheKey([{ name: 'test', value: name }]);
  const entry: CacheEntry = { v: 1, key, result: { kind: 'blob', descriptor: blob, diffId: digestOf(name), uncompressedSize: size }, rootKnown: false };
  await store.addBlob(blob, source);
  await store.put(entry);
  return { key, blob };
}

async function age(path: string, secondsAgo: number): Promise<void> {
  const when = new Date(Date.now() - secondsAgo * 1000);
  await utimes(path, when, when);
}

describe('local store', () => {
  it('prunes least recently used entries and the blobs only they named, down to the bound', async () => {
    const store = LocalCacheStore.of(join(dir.path, 'cache'));
    const a = await putEntry(store, 'a', 10_000);
    const b = await putEntry(store, 'b', 10_000);
    const c = await putEntry(store, 'c', 10_000, 'a'); // the same blob as `a`
    const d = await putEntry(store, 'd', 10_000);
    const entryPath = (key: string): string => join(dir.path, 'cache', 'steps', key.slice(0, 2), `${key}.json`);
    // Last used: a long ago, then b, c, d; then `a` is used again (a hit).
    for (const [entry, ago] of [[a, 400], [b, 300], [c, 200], [d, 100]] as const) {
      await age(entryPath(entry.key), ago);
      await age(store.blobPath(entry.blob.digest), ago);
    }
    expect(await store.get(a.key)).toBeDefined();
    const started = Date.now();

    // Room for two blobs and two entries: b (the oldest now) and then c go; c's blob stays, as a names it.
    const entrySize = async (key: string): Promise<number> => (await stat(entryPath(key))).size;
    const bound = 20_000 + (await entrySize(a.key)) + (await entrySize(d.key));
    const result = await store.prune(bound, started);
    expect(result).toMatchObject({ removedEntries: 2, removedBlobs: 1 });
    expect(await store.get(b.key)).toBeUndefined();
    expect(await store.get(c.key)).toBeUndefined();
    expect(await store.get(a.key)).toBeDefined();
    expect(await store.get(d.key)).toBeDefined();
    const blobs = await readdir(join(dir.path, 'cache', 'blobs', 'sha256'));
    expect(blobs.sort()).toEqual([a.blob.digest.slice(7), d.blob.digest.slice(7)].sort());
    expect(result!.keptBytes).toBe(bound);

    // What the running build used (at or after it started) is never removed, whatever the bound.
    expect(await store.prune(0, started)).toMatchObject({ removedEntries: 0 });
    expect(await store.get(a.key)).toBeDefined();
  });

  it('a blob removed under a reader is a miss, not a failure; one pruner at a time', async () => {
    const store = LocalCacheStore.of(join(dir.path, 'cache'));
    const a = await putEntry(store, 'a', 100);
    const pinned = join(dir.path, 'build', 'blob');
    expect(await store.pinBlob(a.blob, pinned)).toBe(true);
    expect((await stat(pinned)).size).toBe(100);
    await age(store.blobPath(a.blob.digest), 1000);
    const other = LocalCacheStore.of(join(dir.path, 'cache'));
    expect(other).toBe(store);
    await store.prune(0, Date.now() + 60_000);
    expect(await store.get(a.key)).toBeUndefined();
    expect(await store.pinBlob(a.blob, join(dir.path, 'build', 'again'))).toBe(false);
    // The pinned link still holds the bytes for the build that took it.
    expect((await stat(pinned)).size).toBe(100);

    await mkdir(join(dir.path, 'cache'), { recursive: true });
    await writeFile(join(dir.path, 'cache', 'prune.lock'), '1\n');
    expect(await store.prune(0, Date.now())).toBeUndefined();
    // A lock left by a process that died long ago is broken.
    await age(join(dir.path, 'cache', 'prune.lock'), 3600);
    expect(await store.prune(0, Date.now())).toBeDefined();
  });

  it('runs one flight per key at a time', async () => {
    const store = LocalCacheStore.of(join(dir.path, 'cache'));
    const order: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = store.flight('k', async () => {
      order.push('first start');
      await gate;
      order.push('first end');
    });
    const second = store.flight('k', async () => {
      order.push('second');
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(store.busy('k')).toBe(true);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['first start', 'first end', 'second']);
    expect(store.busy('k')).toBe(false);
  });
});
