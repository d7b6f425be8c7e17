import { readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { applyLayers, buildLayer, extractLayer, flattenLayers, readTar, type LayerInput } from '../../src/layers/index.js';
import { OCI } from '../../src/oci/index.js';
import { Collector, TempDirs, handTar, snapshot, type HandEntry } from './helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

const t = (seconds: number): Date => new Date(seconds * 1000);

/** Four layers exercising every whiteout rule of the OCI layer spec and the hardlink corner cases. */
const LAYERS: readonly (readonly HandEntry[])[] = [
  [
    { name: '-early', content: 'lower -early' },
    { name: 'a/', type: 'directory', mtime: t(10) },
    { name: 'a/b/', type: 'directory' },
    { name: 'a/b/c/', type: 'directory' },
    { name: 'a/b/c/bar', content: 'bar' },
    { name: 'a/keep', content: 'hidden by the opaque marker' },
    { name: 'deleted-dir/', type: 'directory' },
    { name: 'deleted-dir/f', content: 'gone' },
    { name: 'dir-then-file/', type: 'directory' },
    { name: 'dir-then-file/child', content: 'gone with its directory' },
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/config', content: 'deleted later' },
    { name: 'etc/other', content: 'stays' },
    { name: 'file-then-dir', content: 'replaced by a directory' },
    { name: 'hard/', type: 'directory' },
    { name: 'hard/x', content: 'original x', mode: 0o600 },
    { name: 'hard/y', type: 'link', linkname: 'hard/x' },
    { name: 'opq/', type: 'directory' },
    { name: 'opq/old', content: 'old' },
    { name: 'opq/sub/', type: 'directory' },
    { name: 'opq/sub/old2', content: 'old2' },
    { name: 'replaced-by-link/', type: 'directory' },
    { name: 'replaced-by-link/f', content: 'gone' },
    { name: 'unchanged', content: 'base file', mode: 0o640, mtime: t(123) },
  ],
  [
    // The opaque marker after entries of its own directory: those entries must survive it.
    { name: '-early', content: 'upper -early' },
    { name: '.wh.-early', content: '' },
    { name: '.wh.deleted-dir', content: '' },
    { name: 'a/', type: 'directory', mode: 0o700, mtime: t(20) },
    { name: 'a/b/', type: 'directory' },
    { name: 'a/b/c/', type: 'directory' },
    { name: 'a/b/c/foo', content: 'foo' },
    { name: 'a/.wh..wh..opq', content: '' },
    { name: 'dir-then-file', content: 'now a file' },
    { name: 'etc/.wh.config', content: '' },
    { name: 'file-then-dir/', type: 'directory' },
    { name: 'file-then-dir/child', content: 'child' },
    { name: 'hard/x', content: 'new x' },
    { name: 'opq/', type: 'directory' },
    { name: 'opq/.wh..wh..opq', content: '' },
    { name: 'opq/new', content: 'new' },
    { name: 'implied/deep/file', content: 'parents never listed' },
  ],
  [
    { name: 'pair/', type: 'directory' },
    { name: 'pair/p', content: 'p content', mode: 0o755 },
    { name: 'pair/q', type: 'link', linkname: 'pair/p' },
    { name: 'pair/r', content: 'old r' },
    { name: 'pair/s', type: 'link', linkname: 'pair/r' },
    { name: 'pair/t', content: 'linked both ways' },
    { name: 'pair/u', type: 'link', linkname: 'pair/t' },
    { name: 'sym', type: 'symlink', linkname: 'pair/t' },
  ],
  [
    { name: 'pair/.wh.p', content: '' },
    { name: 'pair/r', content: 'new r' },
    { name: 'replaced-by-link', type: 'symlink', linkname: 'a' },
    { name: '.wh.never-existed', content: '' },
  ],
];

async function layerBlobs(): Promise<Buffer[]> {
  return Promise.all(LAYERS.map(async (entries, i) => {
    const tar = await handTar(entries);
    return i % 2 === 0 ? gzipSync(tar) : tar;
  }));
}

const inputs = (blobs: readonly Buffer[]): LayerInput[] => blobs.map((blob) => ({ content: () => Readable.from([blob]) }));

describe('applyLayers (whiteouts)', () => {
  it('follows the OCI layer spec for whiteouts, opaque directories and replacements', async () => {
    const root = await dirs.make();
    const results = await applyLayers(root, inputs(await layerBlobs()));
    expect(results).toHaveLength(4);
    const tree = await snapshot(root);
    const paths = Object.keys(tree);

    expect(paths.filter((p) => p.split('/').pop()!.startsWith('.wh.'))).toEqual([]);
    expect(await readFile(join(root, '-early'), 'utf8')).toBe('upper -early');
    expect(paths).not.toContain('deleted-dir');
    expect(paths).not.toContain('a/b/c/bar');
    expect(paths).not.toContain('a/keep');
    expect(await readFile(join(root, 'a/b/c/foo'), 'utf8')).toBe('foo');
    expect(tree.a).toBe('dir 700');
    expect(paths).not.toContain('etc/config');
    expect(paths).toContain('etc/other');
    expect(await readFile(join(root, 'dir-then-file'), 'utf8')).toBe('now a file');
    expect(await readFile(join(root, 'file-then-dir/child'), 'utf8')).toBe('child');
    expect(paths.filter((p) => p.startsWith('opq/'))).toEqual(['opq/new']);
    // The upper x replaced the file; y still names the old inode.
    expect(await readFile(join(root, 'hard/x'), 'utf8')).toBe('new x');
    expect(await readFile(join(root, 'hard/y'), 'utf8')).toBe('original x');
    expect((await stat(join(root, 'hard/y'))).mode & 0o777).toBe(0o600);
    // A whited-out hardlink name leaves the other; a replaced one leaves the old content.
    expect(paths).not.toContain('pair/p');
    expect(await readFile(join(root, 'pair/q'), 'utf8')).toBe('p content');
    expect(await readFile(join(root, 'pair/s'), 'utf8')).toBe('old r');
    expect(await readFile(join(root, 'pair/r'), 'utf8')).toBe('new r');
    expect(tree['pair/u']).toBe('file 644 link-of pair/t');
    expect(await readlink(join(root, 'replaced-by-link'))).toBe('a');
    expect(tree['implied/deep']).toBe('dir 755');
    expect((await stat(join(root, 'unchanged'))).mtimeMs).toBe(123_000);
  });
});

describe('flattenLayers', () => {
  async function flattenToBlob(blobs: readonly Buffer[], options: Parameters<typeof flattenLayers>[1] = {}) {
    const flat = await flattenLayers(inputs(blobs), { tempDir: await dirs.make(), ...options });
    try {
      const out = new Collector();
      const layer = await buildLayer(flat, out, { compression: 'gzip' });
      return { layer, blob: out.bytes, entries: flat.entries };
    } finally {
      await flat.dispose();
    }
  }

  it('gives the tree that applying the layers one by one gives, without whiteouts', async () => {
    const blobs = await layerBlobs();
    const applied = await dirs.make();
    await applyLayers(applied, inputs(blobs));

    const { blob, layer, entries } = await flattenToBlob(blobs);
    const names: string[] = [];
    const types = new Map<string, string>();
    for await (const { header } of readTar(Readable.from([blob]).pipe((await import('node:zlib')).createGunzip()))) {
      names.push(header.name);
      types.set(header.name, header.type);
    }
    expect(names).toHaveLength(entries);
    expect(names.filter((n) => n.includes('.wh.'))).toEqual([]);
    expect(types.get('pair/u')).toBe('hardlink');
    expect(types.get('hard/y')).toBe('file'); // its group lost hard/x: now a file of its own

    const flat = await dirs.make();
    const result = await extractLayer(Readable.from([blob]), flat);
    expect(result.diffId).toBe(layer.diffId);
    // Directory mtimes differ where applying a layer changed a directory it does not list (a
    // whiteout deleting from it, an implied parent): the apply leaves "now" there.
    const withoutDirTimes = (tree: Record<string, string>) => Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, v.startsWith('dir ') ? v.replace(/ t\d+$/, '') : v]));
    expect(withoutDirTimes(await snapshot(flat, { mtimes: true }))).toEqual(withoutDirTimes(await snapshot(applied, { mtimes: true })));
    expect((await stat(join(flat, 'a'))).mtimeMs).toBe(20_000);
  });

  it('is deterministic and leaves no temporary files', async () => {
    const blobs = await layerBlobs();
    const tempDir = await dirs.make();
    const first = await flattenToBlob(blobs, { tempDir });
    const second = await flattenToBlob(blobs, { tempDir });
    expect(second.layer.digest).toBe(first.layer.digest);
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(tempDir)).toEqual([]);
  });

  it('gives implied directories a fixed mode, owner and time', async () => {
    const blob = await handTar([{ name: 'x/y/z', content: 'deep' }]);
    const flat = await flattenLayers([{ content: Readable.from([blob]), mediaType: OCI.layer }], { sourceDateEpoch: 86400 });
    const seen: Array<[string, string, number, number]> = [];
    for await (const entry of flat) seen.push([entry.path, entry.type, entry.mode, entry.mtime]);
    await flat.dispose();
    expect(seen).toEqual([
      ['x', 'directory', 0o755, 86400],
      ['x/y', 'directory', 0o755, 86400],
      ['x/y/z', 'file', 0o644, 0],
    ]);
  });

  it('refuses hardlinks across layers and entries beneath a lower symlink', async () => {
    const base = await handTar([{ name: 'file', content: 'f' }, { name: 'bin', type: 'symlink', linkname: 'usr/bin' }]);
    const crossLink = await handTar([{ name: 'link', type: 'link', linkname: 'file' }]);
    await expect(flattenToBlob([base, crossLink])).rejects.toMatchObject({ code: 'INVALID_ARCHIVE', entry: 'link' });
    const throughSymlink = await handTar([{ name: 'bin/tool', content: 't' }]);
    await expect(flattenToBlob([base, throughSymlink])).rejects.toThrow(/beneath "bin", a symlink/);
    const whiteoutThroughSymlink = await handTar([{ name: 'bin/.wh.tool', content: '' }]);
    await expect(flattenToBlob([base, whiteoutThroughSymlink])).rejects.toThrow(/whiteout of "bin\/tool"/);
    // A symlink of a higher layer over a lower directory is fine: it hides the directory.
    const dirBase = await handTar([{ name: 'bin/', type: 'directory' }, { name: 'bin/tool', content: 't' }]);
    const usrmerge = await handTar([{ name: 'bin', type: 'symlink', linkname: 'usr/bin' }]);
    const { blob } = await flattenToBlob([dirBase, usrmerge]);
    const names: string[] = [];
    for await (const { header } of readTar(Readable.from([blob]).pipe((await import('node:zlib')).createGunzip()))) names.push(header.name);
    expect(names).toEqual(['bin']);
  });
});
