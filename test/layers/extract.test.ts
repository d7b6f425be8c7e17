import { lstat, mkdir, readdir, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import {
  ArchiveLimitError,
  CompressionError,
  InvalidArchiveError,
  LayerSourceError,
  UnsafeArchiveError,
  applyEntries,
  decompressor,
  directorySource,
  extractLayer,
  tarChunks,
  type ExtractOptions,
  type LayerEntry,
  type LayerSource,
} from '../../src/layers/index.js';
import { encodeHeader } from '../../src/layers/tar-format.js';
import { OCI, digestOf } from '../../src/oci/index.js';
import { TempDirs, collect, handTar, inChunks, isRoot, makeSpecialTree, snapshot, type HandEntry } from './helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

/**
 * A base directory holding the extraction root and a sentinel directory beside it: after any
 * extraction, hostile or not, the sentinel must be untouched and nothing else may appear.
 */
async function sandbox(): Promise<{ base: string; root: string; sentinel: string; untouched: () => Promise<void> }> {
  const base = await dirs.make();
  const root = join(base, 'root');
  const sentinel = join(base, 'sentinel');
  await mkdir(root);
  await mkdir(sentinel);
  await writeFile(join(sentinel, 'keep'), 'sentinel');
  return {
    base,
    root,
    sentinel,
    untouched: async () => {
      expect((await readdir(base)).sort()).toEqual(['root', 'sentinel']);
      expect(await snapshot(sentinel)).toEqual({ keep: expect.stringMatching(/^file 644 /) });
    },
  };
}

async function extract(entries: readonly HandEntry[] | Buffer, root: string, options: ExtractOptions = {}) {
  const tar = Buffer.isBuffer(entries) ? entries : await handTar(entries);
  return extractLayer(Readable.from([tar]), root, options);
}

describe('extractLayer on hostile archives', () => {
  it('refuses .. components, writing nothing outside the root', async () => {
    const box = await sandbox();
    for (const name of ['../sentinel/evil', '../../../../tmp/evil', 'a/../../sentinel/evil', 'ok/..']) {
      await expect(extract([{ name, content: 'x' }], box.root)).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE', reason: 'path-traversal', entry: name });
    }
    await box.untouched();
    expect(await readdir(box.root)).toEqual([]);
  });

  it('takes absolute names as relative to the root', async () => {
    const box = await sandbox();
    await extract([{ name: '/abs/file', content: 'inside' }, { name: '//double', content: 'two' }, { name: './dot/./x', content: 'dot' }], box.root);
    expect(await readFile(join(box.root, 'abs/file'), 'utf8')).toBe('inside');
    expect(await readFile(join(box.root, 'double'), 'utf8')).toBe('two');
    expect(await readFile(join(box.root, 'dot/x'), 'utf8')).toBe('dot');
    await box.untouched();
  });

  it('resolves a symlink to / inside the root (chroot-style) instead of following it out', async () => {
    const box = await sandbox();
    await extract(
      [
        { name: 'escape', type: 'symlink', linkname: '/' },
        { name: 'escape/sentinel/pwned', content: 'no' },
        { name: 'up', type: 'symlink', linkname: '../../../../..' },
        { name: 'up/sentinel/pwned2', content: 'no' },
        { name: 'abs', type: 'symlink', linkname: box.sentinel },
        { name: 'abs/pwned3', content: 'no' },
      ],
      box.root,
    );
    await box.untouched();
    // The writes landed inside the root, where the symlinks point when the root is "/".
    expect(await readFile(join(box.root, 'sentinel/pwned'), 'utf8')).toBe('no');
    expect(await readFile(join(box.root, 'sentinel/pwned2'), 'utf8')).toBe('no');
    expect(await readFile(join(box.root, box.sentinel, 'pwned3'), 'utf8')).toBe('no');
    expect(await readlink(join(box.root, 'escape'))).toBe('/');
  });

  it('resolves symlink chains inside the root and stops symlink loops', async () => {
    const box = await sandbox();
    await extract(
      [
        { name: 'a', type: 'symlink', linkname: 'b' },
        { name: 'b', type: 'symlink', linkname: 'c/../../..' },
        { name: 'c', type: 'directory' },
        { name: 'a/sentinel/x', content: 'chained' },
      ],
      box.root,
    );
    expect(await readFile(join(box.root, 'sentinel/x'), 'utf8')).toBe('chained');
    await box.untouched();

    const loop = await sandbox();
    await expect(
      extract(
        [
          { name: 'p', type: 'symlink', linkname: 'q' },
          { name: 'q', type: 'symlink', linkname: 'p' },
          { name: 'p/x', content: 'loop' },
        ],
        loop.root,
      ),
    ).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE', reason: 'symlink-loop', entry: 'p/x' });
    await loop.untouched();
  });

  it('never writes through a symlink that is the entry itself', async () => {
    const box = await sandbox();
    await extract(
      [
        { name: 'target', type: 'symlink', linkname: join(box.sentinel, 'keep') },
        { name: 'target', content: 'replaced the link, not the file' },
      ],
      box.root,
    );
    expect((await lstat(join(box.root, 'target'))).isFile()).toBe(true);
    expect(await readFile(join(box.sentinel, 'keep'), 'utf8')).toBe('sentinel');
    await box.untouched();
  });

  it('keeps hardlinks inside the root: an absolute target is the root\'s, a missing one fails', async () => {
    const hostPasswd = await stat('/etc/passwd');
    const box = await sandbox();
    await expect(extract([{ name: 'evil', type: 'link', linkname: '/etc/passwd' }], box.root)).rejects.toBeInstanceOf(InvalidArchiveError);
    await expect(extract([{ name: 'evil', type: 'link', linkname: '../sentinel/keep' }], box.root)).rejects.toMatchObject({ reason: 'path-traversal', entry: 'evil' });
    await extract(
      [
        { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n' },
        { name: 'escape', type: 'symlink', linkname: '/' },
        { name: 'evil', type: 'link', linkname: '/etc/passwd' },
        { name: 'evil2', type: 'link', linkname: 'escape/etc/passwd' },
      ],
      box.root,
    );
    const inner = await stat(join(box.root, 'etc/passwd'));
    expect((await stat(join(box.root, 'evil'))).ino).toBe(inner.ino);
    expect((await stat(join(box.root, 'evil2'))).ino).toBe(inner.ino);
    expect(inner.nlink).toBe(3);
    expect((await stat('/etc/passwd')).nlink).toBe(hostPasswd.nlink);
    await expect(extract([{ name: 'dir', type: 'directory' }, { name: 'dirlink', type: 'link', linkname: 'dir' }], box.root)).rejects.toThrow(/is a directory/);
    await box.untouched();
  });

  it('refuses devices unless allowed, and creates them when allowed as root', async () => {
    const box = await sandbox();
    const device: HandEntry = { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 };
    await expect(extract([device], box.root, { allowDevices: false })).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE', reason: 'device', entry: 'dev/null' });
    expect(await readdir(box.root)).toEqual([]); // refused before even its parent was made
    if (isRoot) {
      await extract([device, { name: 'pipe', type: 'fifo', mode: 0o600 }], box.root, { allowDevices: true });
      const st = await lstat(join(box.root, 'dev/null'));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe((await stat('/dev/null')).rdev);
      expect(st.mode & 0o7777).toBe(0o666);
      expect((await lstat(join(box.root, 'pipe'))).isFIFO()).toBe(true);
    }
    await box.untouched();
  });

  it('enforces entry count, entry size, total size and path length limits', async () => {
    const box = await sandbox();
    const many = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}`, content: 'x' }));
    await expect(extract(many, box.root, { limits: { maxEntries: 10 } })).rejects.toMatchObject({ code: 'ARCHIVE_LIMIT_EXCEEDED', limit: 'maxEntries', entry: 'f10' });
    await expect(extract([{ name: 'big', content: 'x'.repeat(2000) }], box.root, { limits: { maxEntrySize: 1000 } })).rejects.toMatchObject({ limit: 'maxEntrySize', entry: 'big' });
    await expect(extract([{ name: 'a', content: 'x'.repeat(5000) }, { name: 'b', content: 'y'.repeat(5000) }], box.root, { limits: { maxTotalBytes: 8192 } })).rejects.toBeInstanceOf(ArchiveLimitError);
    await expect(extract([{ name: 'p'.repeat(300), content: '' }], box.root, { limits: { maxPathLength: 255 } })).rejects.toMatchObject({ limit: 'maxPathLength' });

    // A header declaring a terabyte, with no content behind it: refused from the header alone.
    const huge = encodeHeader({ path: 'huge', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 2 ** 40 });
    await expect(extract(Buffer.from(huge), box.root)).rejects.toMatchObject({ code: 'ARCHIVE_LIMIT_EXCEEDED', limit: 'maxEntrySize', entry: 'huge' });
    // A gzip bomb: 64 MiB of zeros compress to 64 KiB; the total cap stops it as it inflates.
    const bomb = gzipSync(await handTar([{ name: 'zeros', content: Buffer.alloc(64 * 1024 * 1024) }]));
    expect(bomb.byteLength).toBeLessThan(200_000);
    await expect(extractLayer(Readable.from([bomb]), box.root, { limits: { maxTotalBytes: 16 * 1024 * 1024 } })).rejects.toMatchObject({ limit: 'maxTotalBytes' });
    await box.untouched();
  });

  it('fails with typed errors on corrupt or truncated input', async () => {
    const box = await sandbox();
    const tar = await handTar([{ name: 'file', content: 'payload '.repeat(10000) }]);
    const gz = gzipSync(tar);
    const flipped = Buffer.from(gz);
    flipped[Math.floor(gz.byteLength / 2)]! ^= 0xff;
    await expect(extractLayer(Readable.from([flipped]), box.root)).rejects.toBeInstanceOf(CompressionError);
    await expect(extractLayer(Readable.from([gz.subarray(0, gz.byteLength - 20)]), box.root)).rejects.toMatchObject({ code: 'INVALID_COMPRESSED_DATA', compression: 'gzip' });
    const badCrc = Buffer.from(gz);
    badCrc[gz.byteLength - 6]! ^= 0x01;
    await expect(extractLayer(Readable.from([badCrc]), box.root)).rejects.toBeInstanceOf(CompressionError);
    const zst = zstdCompress(tar);
    await expect(extractLayer(Readable.from([zst.subarray(0, zst.byteLength - 10)]), box.root)).rejects.toMatchObject({ code: 'INVALID_COMPRESSED_DATA', compression: 'zstd' });
    // Declared as gzip but is not.
    await expect(extractLayer({ content: Readable.from([tar]), mediaType: OCI.layerGzip }, box.root)).rejects.toBeInstanceOf(CompressionError);
    // Plain tar damage: a bad checksum, a truncated entry.
    const damaged = Buffer.from(tar);
    damaged[10] = 0x41;
    await expect(extract(damaged, box.root)).rejects.toThrow(/checksum/);
    await expect(extract(tar.subarray(0, 1000), box.root)).rejects.toThrow(/unexpected end of archive/);
    await expect(extract(Buffer.from('not a tar at all, just some text that is long enough to fill a header. '.repeat(10)), box.root)).rejects.toBeInstanceOf(InvalidArchiveError);
    await box.untouched();
  });

  it('passes the input stream\'s own error through, and names the entry on filesystem errors', async () => {
    const tar = await handTar([{ name: 'a', content: 'x'.repeat(5000) }, { name: 'b', content: 'y' }]);
    const broken = new Error('connection reset by peer');
    const failing = (async function* () {
      yield tar.subarray(0, 1024);
      throw broken;
    })();
    await expect(extractLayer(failing, await dirs.make())).rejects.toBe(broken);
    await expect(extractLayer(Readable.from([gzipSync(tar)]).pipe(new (await import('node:stream')).PassThrough()), await dirs.make())).resolves.toMatchObject({ entries: 2 });
    const tooLong = await handTar([{ name: `${'n'.repeat(300)}`, content: 'x' }]);
    await expect(extract(tooLong, await dirs.make())).rejects.toMatchObject({ code: 'EXTRACT_FAILED', entry: 'n'.repeat(300), message: expect.stringContaining('ENAMETOOLONG') });
  });

  it('decompresses by media type or by magic bytes, zstd included, and reports the diffID', async () => {
    const tar = await handTar([{ name: 'dir', type: 'directory' }, { name: 'dir/file', content: 'z' }]);
    for (const [blob, mediaType] of [
      [gzipSync(tar), OCI.layerGzip],
      [zstdCompress(tar), OCI.layerZstd],
      [tar, OCI.layer],
      [Buffer.concat([gzipSync(tar.subarray(0, 512)), gzipSync(tar.subarray(512))]), undefined],
    ] as const) {
      const root = await dirs.make();
      const result = await extractLayer({ content: Readable.from([blob]), mediaType }, root);
      expect(result.diffId).toBe(digestOf(tar));
      expect(await readFile(join(root, 'dir/file'), 'utf8')).toBe('z');
    }
    const piped = await collect(Readable.from([zstdCompress(tar)]).pipe(decompressor()));
    expect(piped.equals(tar)).toBe(true);
  });

  it('replaces what is in the way, keeps directory-over-directory, and applies metadata', async () => {
    const box = await sandbox();
    await mkdir(join(box.root, 'was-dir/inner'), { recursive: true });
    await writeFile(join(box.root, 'was-dir/inner/f'), 'old');
    await writeFile(join(box.root, 'was-file'), 'old');
    await mkdir(join(box.root, 'keep/sub'), { recursive: true });
    await writeFile(join(box.root, 'keep/sub/lower'), 'lower');
    await symlink(box.sentinel, join(box.root, 'was-link'));
    await extract(
      [
        { name: 'was-dir', content: 'now a file' },
        { name: 'was-file', type: 'directory', mode: 0o700 },
        { name: 'keep', type: 'directory', mode: 0o711, mtime: new Date(1_000_000_000_000) },
        { name: 'was-link', type: 'directory' },
        { name: 'was-link/new', content: 'inside' },
        { name: 'ro', type: 'directory', mode: 0o555 },
        { name: 'ro/child', content: 'written before the mode', mode: 0o400, mtime: new Date(5_000_000) },
      ],
      box.root,
    );
    expect(await readFile(join(box.root, 'was-dir'), 'utf8')).toBe('now a file');
    expect((await stat(join(box.root, 'was-file'))).mode & 0o7777).toBe(0o700);
    expect(await readFile(join(box.root, 'keep/sub/lower'), 'utf8')).toBe('lower');
    const keep = await stat(join(box.root, 'keep'));
    expect([keep.mode & 0o7777, keep.mtimeMs]).toEqual([0o711, 1_000_000_000_000]);
    expect((await lstat(join(box.root, 'was-link'))).isDirectory()).toBe(true);
    const child = await stat(join(box.root, 'ro/child'));
    expect([child.mode & 0o7777, child.mtimeMs]).toEqual([0o400, 5_000_000]);
    expect((await stat(join(box.root, 'ro'))).mode & 0o7777).toBe(0o555);
    await box.untouched();
  });

  it('writes small files on the loop and large ones through the pool alike, whatever the input chunks', async () => {
    // 64 KiB is the line between the two ways of writing (extract.ts, SYNC_FILE_LIMIT).
    const sizes = [0, 1, 64 * 1024, 64 * 1024 + 1, 300_000];
    const bodies = sizes.map((size, i) => Buffer.alloc(size, i + 1));
    const tar = await handTar(sizes.map((_, i) => ({ name: `d/f${i}`, content: bodies[i]!, mode: 0o4750, ...(isRoot ? { uid: 1000 } : {}), mtime: new Date(7_000_000 + i * 1000) })));
    for (const chunk of [333, 65_536, tar.byteLength]) {
      const root = await dirs.make();
      const result = await extractLayer(inChunks(tar, chunk), root);
      expect(result.entries).toBe(sizes.length);
      for (const [i, body] of bodies.entries()) {
        const path = join(root, `d/f${i}`);
        expect((await readFile(path)).equals(body), `f${i}, chunks of ${chunk}`).toBe(true);
        const st = await stat(path);
        // The mode comes after the owner (chown clears setuid), and the time after the content.
        expect([st.mode & 0o7777, st.mtimeMs, isRoot ? st.uid : 1000]).toEqual([0o4750, 7_000_000 + i * 1000, 1000]);
      }
    }
  });

  it.runIf(isRoot)('records owners when running as root, and not when asked not to', async () => {
    const root = await dirs.make();
    await extract([{ name: 'owned', content: 'x', uid: 1234, gid: 5678, mode: 0o6755 }, { name: 'link', type: 'symlink', linkname: 'owned', uid: 42, gid: 43 }], root);
    const st = await stat(join(root, 'owned'));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([1234, 5678, 0o6755]);
    const link = await lstat(join(root, 'link'));
    expect([link.uid, link.gid]).toEqual([42, 43]);
    const other = await dirs.make();
    await extract([{ name: 'owned', content: 'x', uid: 1234, gid: 5678 }], other, { preserveOwnership: false });
    expect((await stat(join(other, 'owned'))).uid).toBe(0);
  });

  it('throws UnsafeArchiveError, not a Node error, for names with NUL', async () => {
    const { readTar } = await import('../../src/layers/index.js');
    const pax = await handTar([{ name: 'x', content: 'a', pax: { path: 'bad\u0000name' } }]);
    const names: string[] = [];
    for await (const { header } of readTar(Readable.from([pax]))) names.push(header.name);
    expect(names).toEqual(['bad\u0000name']);
    await expect(extract(pax, await dirs.make())).rejects.toBeInstanceOf(UnsafeArchiveError);
  });
});

/** A source of the given entries, in order. */
function entriesOf(entries: readonly LayerEntry[]): LayerSource {
  return { [Symbol.asyncIterator]: async function* () { yield* entries; } };
}

describe('applyEntries (a layer written without an archive)', () => {
  it('writes the same tree as archiving the entries and extracting the archive, with and without host paths', async () => {
    const source = await dirs.make();
    await makeSpecialTree(source);
    const viaTar = await dirs.make();
    await extractLayer(tarChunks(directorySource(source)), viaTar, { whiteouts: 'keep' });
    const streamed = await dirs.make();
    await applyEntries(directorySource(source), streamed, { whiteouts: 'keep' });
    // The same entries, each regular file pointing at its host file: copied by the kernel.
    const copied = await dirs.make();
    const withHostPaths: LayerSource = {
      async *[Symbol.asyncIterator]() {
        for await (const entry of directorySource(source)) yield entry.type === 'file' ? { ...entry, hostPath: join(source, entry.path) } : entry;
      },
    };
    const applied = await applyEntries(withHostPaths, copied, { whiteouts: 'keep' });
    const expected = await snapshot(viaTar, { mtimes: true, owners: true });
    expect(await snapshot(streamed, { mtimes: true, owners: true })).toEqual(expected);
    expect(await snapshot(copied, { mtimes: true, owners: true })).toEqual(expected);
    expect(applied.entries).toBe(Object.keys(expected).length);
    expect(applied.size).toBeGreaterThan(3 * 1024 * 1024);
  });

  it('applies whiteouts and keeps every write inside the root', async () => {
    const box = await sandbox();
    await mkdir(join(box.root, 'lower/sub'), { recursive: true });
    await writeFile(join(box.root, 'lower/sub/old'), 'old');
    await writeFile(join(box.root, 'gone'), 'old');
    await symlink(box.sentinel, join(box.root, 'escape'));
    const file = (path: string, content: string, hostPath?: string): LayerEntry => ({
      path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: Buffer.byteLength(content), mtime: 0,
      ...(hostPath === undefined ? { open: async function* () { yield Buffer.from(content); } } : { hostPath }),
    });
    const host = join(await dirs.make(), 'host');
    await writeFile(host, 'from the host');
    await applyEntries(
      entriesOf([
        { path: '.wh.gone', type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 },
        { path: 'escape', type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 },
        file('escape/inside', 'x'),
        { path: 'lower', type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 },
        { path: 'lower/.wh..wh..opq', type: 'file', mode: 0, uid: 0, gid: 0, size: 0, mtime: 0 },
        file('lower/new', 'from the host', host),
      ]),
      box.root,
    );
    expect(await snapshot(box.root)).toEqual({
      escape: 'dir 755',
      'escape/inside': expect.stringMatching(/^file 644 /),
      lower: 'dir 755',
      'lower/new': expect.stringMatching(/^file 644 /),
    });
    expect(await readFile(join(box.root, 'lower/new'), 'utf8')).toBe('from the host');
    await box.untouched();
    await expect(applyEntries(entriesOf([file('a/../../sentinel/evil', 'x')]), box.root)).rejects.toMatchObject({ code: 'UNSAFE_ARCHIVE', reason: 'path-traversal' });
    await box.untouched();
  });

  it('fails, naming the entry, when a host file no longer has the size that was planned', async () => {
    const host = join(await dirs.make(), 'grew');
    await writeFile(host, 'longer than planned');
    const entry: LayerEntry = { path: 'grew', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 4, mtime: 0, hostPath: host };
    const err = await applyEntries(entriesOf([entry]), await dirs.make()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerSourceError);
    expect((err as Error).message).toContain('grew');
  });

  it('copies host files several at a time and still reports the first that fails', async () => {
    const hostDir = await dirs.make();
    const entries: LayerEntry[] = [{ path: 'd', type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 }];
    for (let i = 0; i < 20; i++) {
      await writeFile(join(hostDir, `f${i}`), `content ${i}`);
      entries.push({ path: `d/f${i}`, type: 'file', mode: 0o600, uid: 0, gid: 0, size: Buffer.byteLength(`content ${i}`), mtime: i, hostPath: join(hostDir, `f${i}`) });
    }
    const root = await dirs.make();
    await applyEntries(entriesOf(entries), root);
    for (let i = 0; i < 20; i++) {
      expect(await readFile(join(root, `d/f${i}`), 'utf8')).toBe(`content ${i}`);
      expect((await stat(join(root, `d/f${i}`))).mtimeMs).toBe(i * 1000);
    }
    const broken = entries.map((e) => (e.path === 'd/f13' ? { ...e, size: 3 } : e));
    const err = await applyEntries(entriesOf(broken), await dirs.make()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LayerSourceError);
    expect((err as LayerSourceError).message).toContain('d/f13');
  });

  it('copies host files side by side into parents that no entry made', async () => {
    const hostDir = await dirs.make();
    const entries: LayerEntry[] = [];
    for (let i = 0; i < 16; i++) {
      await writeFile(join(hostDir, `f${i}`), `file ${i}`);
      entries.push({ path: `no/parent/entry/f${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: Buffer.byteLength(`file ${i}`), mtime: 0, hostPath: join(hostDir, `f${i}`) });
    }
    const root = await dirs.make();
    await applyEntries(entriesOf(entries), root);
    expect((await readdir(join(root, 'no/parent/entry'))).length).toBe(16);
  });

  it('never follows a host path that became a symlink (a context file swapped during the build)', async () => {
    const box = await sandbox();
    const host = join(await dirs.make(), 'swapped');
    await symlink(join(box.sentinel, 'keep'), host);
    const entry: LayerEntry = { path: 'copied', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 8, mtime: 0, hostPath: host };
    await expect(applyEntries(entriesOf([entry]), box.root)).rejects.toMatchObject({ code: 'EXTRACT_FAILED', entry: 'copied' });
    expect(await readdir(box.root)).toEqual([]);
    await box.untouched();
  });
});
