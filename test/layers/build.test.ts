import { createReadStream } from 'node:fs';
import { chmod, chown, lutimes, readdir, readFile, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GzipEncoder,
  buildLayer,
  buildLayerFile,
  directorySource,
  extractLayer,
  readTar,
  tarChunks,
  type LayerEntry,
  type LayerSource,
} from '../../src/layers/index.js';
import { OCI, DOCKER, digestOf } from '../../src/oci/index.js';
import { Rng, randomBytesOf, textBytes } from '../fixtures/tree.js';
import { Collector, LONG_DIR, LONG_NAME, LONG_TARGET, TempDirs, collect, makeSpecialTree, run, snapshot } from './helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

async function specialTree(): Promise<string> {
  const root = join(await dirs.make(), 'tree');
  await makeSpecialTree(root);
  return root;
}

async function build(source: LayerSource, options: Parameters<typeof buildLayer>[2] = {}) {
  const out = new Collector();
  const layer = await buildLayer(source, out, options);
  return { layer, bytes: out.bytes };
}

/** Sets every mtime in a tree (and optionally the owner) to something else. */
async function disturb(root: string, mtime: number, owner?: number): Promise<void> {
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const abs = join(dir, entry.name);
      if (owner !== undefined && !entry.isSymbolicLink()) {
        // chown clears setuid/setgid: put the mode back, only the owner should differ.
        const { mode } = await stat(abs);
        await chown(abs, owner, owner);
        await chmod(abs, mode & 0o7777);
      }
      if (entry.isSymbolicLink()) await lutimes(abs, mtime, mtime);
      else await utimes(abs, mtime, mtime);
      if (entry.isDirectory()) await walk(abs);
    }
  };
  await walk(root);
}

describe('buildLayer', () => {
  it('round-trips every kind of entry through gzip and extractLayer', async () => {
    const root = await specialTree();
    const layerPath = join(await dirs.make(), 'layer.tar.gz');
    const layer = await buildLayerFile(directorySource(root), layerPath, { compression: 'gzip' });
    expect(layer.mediaType).toBe(OCI.layerGzip);
    const blob = await readFile(layerPath);
    expect(layer.size).toBe(blob.byteLength);
    expect(layer.digest).toBe(digestOf(blob));
    expect(layer.diffId).toBe(digestOf(gunzipSync(blob)));
    expect(layer.uncompressedSize).toBe(gunzipSync(blob).byteLength);

    const out = join(await dirs.make(), 'out');
    const extracted = await extractLayer(createReadStream(layerPath), out, { whiteouts: 'keep' });
    expect(extracted.diffId).toBe(layer.diffId);
    const want = await snapshot(root);
    const got = await snapshot(out);
    expect(got).toEqual(want);
    // Spot checks of what the snapshot encodes.
    expect(got['z/hard2']).toBe('file 644 link-of a/hard1');
    expect(got['bin/su']).toMatch(/^file 4755 /);
    expect(got.tmp).toBe('dir 1777');
    expect(got['link-long']).toBe(`symlink -> ${LONG_TARGET}`);
    expect(got[`${LONG_DIR}/${LONG_NAME}`]).toMatch(/^file 644 /);
    expect(got['unicodé/文件.txt']).toMatch(/^file 644 /);
    expect(got.fifo).toBe('fifo 644');
    expect(got['.wh.deleted']).toMatch(/^file 644 /);
  });

  it('writes normalised metadata: epoch mtimes, root owner, sorted entries, no root entry', async () => {
    const root = await specialTree();
    const { bytes } = await build(directorySource(root, { sourceDateEpoch: 1_700_000_000 }), { compression: 'none' });
    const names: string[] = [];
    for await (const { header } of readTar(Readable.from([bytes]))) {
      names.push(header.name);
      expect(header.mtime).toBe(1_700_000_000);
      expect([header.uid, header.gid, header.uname, header.gname]).toEqual([0, 0, '', '']);
    }
    expect(names[0]).toBe('.wh.deleted');
    expect(names).toContain('a/');
    expect(names).toContain('a/b/c/big.bin');
    expect(names.indexOf('a/')).toBeLessThan(names.indexOf('a/b/'));
    // Depth-first with byte-sorted names: all of a/ comes before its next sibling.
    const top = names.filter((n) => n.split('/').filter(Boolean).length === 1);
    expect(top.slice(0, 4)).toEqual(['.wh.deleted', 'a/', 'bin/', 'empty']);
    expect(top.at(-1)).toBe('🐳.txt');
    expect(names.indexOf('a/b/c/big.bin')).toBeLessThan(names.indexOf('bin/'));
    expect(names).not.toContain('./');
    expect(names.includes(`${LONG_DIR}/${LONG_NAME}`)).toBe(true);
  });

  it('is deterministic: other mtimes and owners, other worker counts, same bytes', async () => {
    const root = await specialTree();
    const copy = join(await dirs.make(), 'copy');
    expect((await run('cp', ['-a', root, copy])).code).toBe(0);
    await disturb(copy, 1_234_567_890, process.getuid?.() === 0 ? 4321 : undefined);

    const first = await build(directorySource(root), { workers: 1 });
    const again = await build(directorySource(root), { workers: 1 });
    expect(again.bytes.equals(first.bytes)).toBe(true);
    for (const workers of [2, 4]) {
      const other = await build(directorySource(copy), { workers });
      expect(other.layer.digest).toBe(first.layer.digest);
      expect(other.layer.diffId).toBe(first.layer.diffId);
    }
    const zstd1 = await build(directorySource(root), { compression: 'zstd', workers: 1 });
    const zstd4 = await build(directorySource(copy), { compression: 'zstd', workers: 4 });
    expect(zstd4.layer.digest).toBe(zstd1.layer.digest);
    expect(zstd1.layer.diffId).toBe(first.layer.diffId);
  });

  it('clamps mtimes with mtime: clamp and maps owners with a function', async () => {
    const root = join(await dirs.make(), 'tree');
    await makeSpecialTree(root);
    await utimes(join(root, 'empty'), 1000, 1000);
    const source = directorySource(root, { sourceDateEpoch: 2_000_000_000, mtime: 'clamp', owner: ({ uid }) => ({ uid: uid + 1000, gid: 7, uname: 'app', gname: 'staff' }) });
    const { bytes } = await build(source, { compression: 'none' });
    const headers = new Map<string, { mtime: number; uid: number; gid: number; uname: string }>();
    for await (const { header } of readTar(Readable.from([bytes]))) headers.set(header.name, header);
    expect(headers.get('empty')?.mtime).toBe(1000);
    expect(headers.get('a/hello.txt')?.mtime).toBe(Math.floor((await stat(join(root, 'a/hello.txt'))).mtimeMs / 1000));
    expect(headers.get('a/hello.txt')).toMatchObject({ uid: (await stat(root)).uid + 1000, gid: 7, uname: 'app' });
  });

  it('produces output the system tools accept: gzip -t, tar -tv, zstd -t, GNU tar extraction', async () => {
    const root = await specialTree();
    const gz = await build(directorySource(root), { compression: 'gzip', level: 9 });
    expect((await run('gzip', ['-t'], gz.bytes)).code).toBe(0);
    const listing = await run('tar', ['-tvzf', '-'], gz.bytes);
    expect(listing.stderr).toBe('');
    const lines = listing.stdout.toString().trim().split('\n');
    expect(lines.find((l) => l.endsWith(' a/b/c/big.bin'))).toMatch(/^-rw-r--r-- 0\/0 +3145851 1970-01-01 00:00 a\/b\/c\/big\.bin$/);
    expect(lines.find((l) => l.includes('z/hard2'))).toMatch(/^hrw-r--r-- .* z\/hard2 link to a\/hard1$/);
    expect(lines.find((l) => l.includes('link-rel'))).toMatch(/^lrwxrwxrwx .* link-rel -> a\/hello\.txt$/);
    expect(lines.find((l) => l.includes('bin/su'))).toMatch(/^-rwsr-xr-x /);
    expect(lines.find((l) => l.endsWith(' tmp/'))).toMatch(/^drwxrwxrwt /);
    expect(lines.find((l) => l.includes('fifo'))).toMatch(/^prw-r--r-- /);
    expect(lines.some((l) => l.endsWith(`${LONG_DIR}/${LONG_NAME}`))).toBe(true);
    expect(lines.some((l) => l.endsWith('unicodé/文件.txt'))).toBe(true);

    const zst = await build(directorySource(root), { compression: 'zstd' });
    expect(zst.layer.mediaType).toBe(OCI.layerZstd);
    expect((await run('zstd', ['-t', '-q'], zst.bytes)).code).toBe(0);
    const unzstd = await run('zstd', ['-d', '-c', '-q'], zst.bytes);
    expect(digestOf(unzstd.stdout)).toBe(gz.layer.diffId);

    // GNU tar extracts our tar into the same tree as ours does (and as the original).
    const byTar = await dirs.make();
    const untar = await run('tar', ['-xzf', '-', '-C', byTar, '--same-owner', '-p'], gz.bytes);
    expect(untar.stderr).toBe('');
    expect(await snapshot(byTar)).toEqual(await snapshot(root));
  });

  it('reads tars written by GNU tar (gnu and pax formats) and busybox into the same tree', async () => {
    const root = await specialTree();
    const ours = await dirs.make();
    for (const format of ['gnu', 'pax', 'ustar']) {
      const made = await run('tar', ['-c', '-f', '-', `--format=${format}`, '-C', root, '.']);
      if (format === 'ustar') {
        // ustar cannot hold a 150-byte file name: GNU tar says so and skips it.
        expect(made.stderr).toContain('file name is too long');
        continue;
      }
      expect(made.code).toBe(0);
      const out = join(ours, format);
      await extractLayer(Readable.from([made.stdout]), out, { whiteouts: 'keep' });
      expect(await snapshot(out)).toEqual(await snapshot(root));
    }
    const busybox = await run('busybox', ['tar', '-c', '-f', '-', '-C', join(root, 'a'), '.']);
    expect(busybox.code).toBe(0);
    const out = join(ours, 'busybox');
    await extractLayer(Readable.from([busybox.stdout]), out);
    expect(await snapshot(out)).toEqual(Object.fromEntries(Object.entries(await snapshot(root)).filter(([k]) => k.startsWith('a/')).map(([k, v]) => [k.slice(2), v.replace(/link-of a\//, 'link-of ')])));
  });

  it('builds Docker media types and refuses zstd in the Docker family', async () => {
    const root = await specialTree();
    const docker = await build(directorySource(root), { mediaTypeFamily: 'docker' });
    expect(docker.layer.mediaType).toBe(DOCKER.layerGzip);
    await expect(build(directorySource(root), { compression: 'zstd', mediaTypeFamily: 'docker' })).rejects.toThrow(/Docker schema 2 has no zstd/);
    const none = await build(directorySource(root), { compression: 'none' });
    expect(none.layer).toMatchObject({ mediaType: OCI.layer, digest: none.layer.diffId, size: none.layer.uncompressedSize });
  });

  it('fails, without a result, when a file changes size while it is read', async () => {
    const grows: LayerSource = (async function* (): AsyncGenerator<LayerEntry> {
      yield { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 3, open: async function* () { yield Buffer.from('four'); } };
    })();
    await expect(build(grows)).rejects.toMatchObject({ code: 'LAYER_SOURCE' });
    const shrinks: LayerSource = (async function* (): AsyncGenerator<LayerEntry> {
      yield { path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 5, open: async function* () { yield Buffer.from('four'); } };
    })();
    await expect(build(shrinks)).rejects.toThrow(/shrank/);
    const bad: LayerSource = (async function* (): AsyncGenerator<LayerEntry> {
      yield { path: '../x', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0, size: 0 };
    })();
    await expect(build(bad)).rejects.toThrow(/not normalised/);
  });

  it('stops with AbortedError when the signal fires, and leaves no file behind', async () => {
    const root = await specialTree();
    const controller = new AbortController();
    controller.abort(new Error('user cancelled'));
    const target = join(await dirs.make(), 'layer.tgz');
    await expect(buildLayerFile(directorySource(root), target, { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await readdir(join(target, '..'))).toEqual([]);
  });
});

describe('GzipEncoder', () => {
  async function gzip(data: Uint8Array, options: { level?: number; workers?: number; chunk?: number; blockSize?: number }): Promise<Buffer> {
    const encoder = new GzipEncoder({ level: options.level, workers: options.workers, blockSize: options.blockSize });
    const chunk = options.chunk ?? 65536;
    const chunks: Buffer[] = [];
    for (let i = 0; i < data.byteLength; i += chunk) chunks.push(Buffer.from(data.subarray(i, i + chunk)));
    return collect(Readable.from(chunks).pipe(encoder));
  }

  it('gives exactly zlib.gzipSync bytes for an input shorter than a block', async () => {
    const data = textBytes(new Rng(1), 100_000);
    for (const level of [1, 6, 9]) expect((await gzip(data, { level, chunk: 7777 })).equals(gzipSync(data, { level }))).toBe(true);
    expect((await gzip(new Uint8Array(0), {})).equals(gzipSync(new Uint8Array(0)))).toBe(true);
  });

  it('is independent of worker count and chunking, across many blocks, and round-trips', async () => {
    const rng = new Rng(2);
    const data = Buffer.concat([textBytes(rng, 300_000), randomBytesOf(rng, 200_000), textBytes(rng, 333_333)]);
    const reference = await gzip(data, { workers: 1, chunk: 65536, blockSize: 64 * 1024 });
    for (const [workers, chunk] of [[2, 1000], [8, 200_001], [3, data.byteLength]] as const) {
      expect((await gzip(data, { workers, chunk, blockSize: 64 * 1024 })).equals(reference)).toBe(true);
    }
    expect(gunzipSync(reference).equals(data)).toBe(true);
    expect((await run('gzip', ['-t'], reference)).code).toBe(0);
    // Priming each block with the previous 32 KiB keeps the ratio at single-stream level.
    expect(reference.byteLength).toBeLessThan(gzipSync(data).byteLength * 1.01);
    // An input that is an exact multiple of the block size still ends with a final block.
    const exact = data.subarray(0, 4 * 64 * 1024);
    expect(gunzipSync(await gzip(exact, { blockSize: 64 * 1024 })).equals(exact)).toBe(true);
  });

  it('refuses levels outside 1-9', () => {
    expect(() => new GzipEncoder({ level: 0 })).toThrow(RangeError);
    expect(() => new GzipEncoder({ level: 10 })).toThrow(RangeError);
  });
});

describe('tar headers', () => {
  it('uses PAX for sizes of 8 GiB and more, large ids, binary xattrs and far mtimes; GNU tar agrees', async () => {
    const xattr = Uint8Array.of(1, 0, 0, 2, 0, 0x20, 0, 0, 0xff, 0x80, 0);
    const entries: LayerEntry[] = [
      { path: 'huge', type: 'file', mode: 0o600, uid: 3_000_000, gid: 4_000_000, mtime: 99_999_999_999, size: 9 * 1024 ** 3 },
    ];
    const source: LayerSource = (async function* () {
      yield { path: 'cap', type: 'file' as const, mode: 0o755, uid: 0, gid: 0, mtime: -5, size: 0, xattrs: { 'security.capability': xattr, 'user.note': Buffer.from('ünï') } };
      yield { path: 'dev', type: 'char-device' as const, mode: 0o666, uid: 0, gid: 0, mtime: 0, size: 0, devmajor: 1, devminor: 3 };
    })();
    const tar = await collect(tarChunks(source));
    const headers = [];
    for await (const { header } of readTar(Readable.from([tar]))) headers.push(header);
    expect(headers[0]).toMatchObject({ name: 'cap', mtime: -5 });
    expect(Buffer.from(headers[0]!.xattrs['security.capability']!).equals(Buffer.from(xattr))).toBe(true);
    expect(Buffer.from(headers[0]!.xattrs['user.note']!).toString()).toBe('ünï');
    expect(headers[1]).toMatchObject({ name: 'dev', type: 'char-device', devmajor: 1, devminor: 3 });

    // A header alone (no 9 GiB of content): our reader and GNU tar both read the PAX size.
    const { encodeHeader } = await import('../../src/layers/tar-format.js');
    const header = encodeHeader(entries[0]!);
    const seen = [];
    for await (const entry of readTar(Readable.from([header]))) {
      seen.push(entry.header);
      break;
    }
    expect(seen[0]).toMatchObject({ name: 'huge', size: 9 * 1024 ** 3, uid: 3_000_000, gid: 4_000_000, mtime: 99_999_999_999 });
    const listing = await run('tar', ['-tvf', '-', '--numeric-owner'], header);
    expect(listing.stdout.toString()).toContain(`3000000/4000000 ${9 * 1024 ** 3} `);
  });
});
