import { createServer } from 'node:net';
import { link, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { comparePaths, directorySource, normalizeArchivePath, readTar, whiteoutPath, opaqueWhiteoutPath, type LayerEntry } from '../../src/layers/index.js';
import { TempDirs, collect, handTar, run } from './helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

async function entries(root: string): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  for await (const entry of directorySource(root)) out.push(entry);
  return out;
}

describe('directorySource', () => {
  it('walks depth-first in byte order and records later names of an inode as hardlinks', async () => {
    const root = await dirs.make();
    for (const dir of ['a', 'a-b', 'a/x', 'B', 'é']) await mkdir(join(root, dir), { recursive: true });
    await writeFile(join(root, 'a/x/first'), 'content');
    await link(join(root, 'a/x/first'), join(root, 'a-b/second'));
    await link(join(root, 'a/x/first'), join(root, 'B/third'));
    const seen = await entries(root);
    expect(seen.map((e) => e.path)).toEqual(['B', 'B/third', 'a', 'a/x', 'a/x/first', 'a-b', 'a-b/second', 'é']);
    expect(seen.find((e) => e.path === 'B/third')).toMatchObject({ type: 'file', size: 7 });
    expect(seen.find((e) => e.path === 'a/x/first')).toMatchObject({ type: 'hardlink', linkname: 'B/third', size: 0 });
    expect(seen.find((e) => e.path === 'a-b/second')).toMatchObject({ type: 'hardlink', linkname: 'B/third' });
  });

  it('skips sockets and refuses names that are not UTF-8', async () => {
    const root = await dirs.make();
    await writeFile(join(root, 'file'), 'x');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(join(root, 'socket'), resolve));
    try {
      expect((await entries(root)).map((e) => e.path)).toEqual(['file']);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    await writeFile(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xff, 0xfe])]), 'x');
    await expect(entries(root)).rejects.toMatchObject({ code: 'LAYER_SOURCE', message: expect.stringContaining('not valid UTF-8') });
  });

  it('can be iterated again, and reports a missing root as a typed error', async () => {
    const root = await dirs.make();
    await writeFile(join(root, 'f'), 'x');
    const source = directorySource(root);
    expect((await entries(root)).length).toBe(1);
    const again: string[] = [];
    for await (const e of source) again.push(e.path);
    for await (const e of source) again.push(e.path);
    expect(again).toEqual(['f', 'f']);
    await expect(entries(join(root, 'missing'))).rejects.toMatchObject({ code: 'LAYER_SOURCE' });
  });
});

describe('paths', () => {
  it('orders like a byte-sorted depth-first walk, in UTF-8 byte order', () => {
    const paths = ['a-b', 'a/x', 'a', '\u{1F433}', '\uFF5E', 'A', 'a/x/y', '.wh.a', ''];
    expect([...paths].sort(comparePaths)).toEqual(['', '.wh.a', 'A', 'a', 'a/x', 'a/x/y', 'a-b', '\uFF5E', '\u{1F433}']);
    const bytes = (s: string): Buffer => Buffer.from(s.replaceAll('/', '\0'));
    expect([...paths].sort(comparePaths)).toEqual([...paths].sort((x, y) => Buffer.compare(bytes(x), bytes(y))));
  });

  it('normalises archive names and names whiteouts', () => {
    expect(normalizeArchivePath('./a//b/./c/')).toBe('a/b/c');
    expect(normalizeArchivePath('/abs')).toBe('abs');
    expect(normalizeArchivePath('./')).toBe('');
    expect(() => normalizeArchivePath('a/../b')).toThrow(/\.\./);
    expect(whiteoutPath('a/b')).toBe('a/.wh.b');
    expect(whiteoutPath('top')).toBe('.wh.top');
    expect(opaqueWhiteoutPath('')).toBe('.wh..wh..opq');
    expect(opaqueWhiteoutPath('d')).toBe('d/.wh..wh..opq');
  });
});

describe('readTar', () => {
  it('reads global PAX records, v7 directories, and skips unread content', async () => {
    const tar = await handTar([
      { name: 'one', content: 'x'.repeat(1000), pax: { 'SCHILY.xattr.user.k': 'v' } },
      { name: 'two', content: 'y'.repeat(10) },
    ]);
    const names: string[] = [];
    for await (const { header } of readTar(Readable.from([tar]))) names.push(`${header.name}:${header.size}:${Object.keys(header.xattrs).join(',')}`);
    expect(names).toEqual(['one:1000:user.k', 'two:10:']);

    // GNU tar writes a global header ('g') for uname=...; it applies to every later entry.
    const root = await dirs.make();
    await writeFile(join(root, 'f'), 'hi');
    await writeFile(join(root, 'g'), 'there');
    const gnu = await run('tar', ['-C', root, '--format=pax', '--pax-option=uname=globaluser', '-cf', '-', 'f', 'g']);
    const global = [];
    for await (const { header, content } of readTar(Readable.from([gnu.stdout]))) {
      global.push([header.name, header.uname, (await collect(content)).toString()]);
    }
    expect(global).toEqual([
      ['f', 'globaluser', 'hi'],
      ['g', 'globaluser', 'there'],
    ]);

    // A v7 header (no magic): a trailing slash marks a directory.
    const v7 = Buffer.alloc(512 * 3);
    v7.write('old-dir/', 0);
    v7.write('0000755\0', 100);
    v7.write('00000000000\0', 124);
    v7.write('00000000000\0', 136);
    v7.write('        ', 148);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += v7[i]!;
    v7.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    const v7Headers = [];
    for await (const { header } of readTar(Readable.from([v7]))) v7Headers.push(header);
    expect(v7Headers).toMatchObject([{ name: 'old-dir/', type: 'directory', mode: 0o755 }]);
  });
});
