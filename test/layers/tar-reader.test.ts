import { describe, expect, it } from 'vitest';
import { readTar, tarChunks, type LayerEntry } from '../../src/layers/index.js';
import { collect, inChunks } from './helpers.js';

// readTar hands over content the current input chunk holds whole without awaiting, and reads
// the rest as it arrives: however the stream is cut, the same entries and bytes come out.

const SIZES = [0, 1, 511, 512, 513, 4096, 70_000];

function content(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

function entries(): LayerEntry[] {
  const out: LayerEntry[] = [{ path: 'd', type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 1 }];
  for (const [i, size] of SIZES.entries()) {
    const bytes = content(size, i);
    out.push({ path: `d/f${i}`, type: 'file', mode: 0o644, uid: 1, gid: 2, size, mtime: 2, open: () => once(bytes) });
  }
  // A name too long for ustar: a PAX header before the entry's own.
  out.push({ path: `d/${'n'.repeat(150)}`, type: 'file', mode: 0o600, uid: 0, gid: 0, size: 3, mtime: 3, open: () => once(new Uint8Array([1, 2, 3])) });
  return out;
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

async function archive(): Promise<Uint8Array> {
  return collect(tarChunks((async function* () {
    yield* entries();
  })()));
}

describe('readTar over a stream cut anywhere', () => {
  it('gives the same headers and content for chunks of 1 byte to the whole archive', async () => {
    const tar = await archive();
    const expected = entries();
    for (const size of [1, 7, 511, 512, 513, 4096, 65_536, tar.byteLength]) {
      const seen: { name: string; size: number; content: Buffer }[] = [];
      for await (const { header, content: body } of readTar(inChunks(tar, size))) {
        const parts: Uint8Array[] = [];
        for await (const chunk of body) parts.push(Buffer.from(chunk)); // views of the input: copied
        seen.push({ name: header.name, size: header.size, content: Buffer.concat(parts) });
      }
      expect(seen.map((e) => e.name), `chunks of ${size}`).toEqual(expected.map((e) => (e.type === 'directory' ? `${e.path}/` : e.path)));
      for (const [i, bytes] of SIZES.entries()) {
        expect(seen[i + 1]!.size, `chunks of ${size}`).toBe(bytes);
        expect(seen[i + 1]!.content.equals(content(bytes, i)), `f${i}, chunks of ${size}`).toBe(true);
      }
      expect([...seen.at(-1)!.content]).toEqual([1, 2, 3]);
    }
  });

  it('skips content left unread or read in part, wherever the chunks end', async () => {
    const tar = await archive();
    for (const size of [1, 513, 4096, tar.byteLength]) {
      const names: string[] = [];
      let turn = 0;
      for await (const { header, content: body } of readTar(inChunks(tar, size))) {
        names.push(header.name);
        // Every other file: read one chunk and stop; the others are not read at all.
        if (turn++ % 2 === 0) for await (const _chunk of body) break;
      }
      expect(names, `chunks of ${size}`).toHaveLength(entries().length);
    }
  });
});
