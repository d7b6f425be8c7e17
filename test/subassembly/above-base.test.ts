import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress, readTar, validateImage } from '../../src/layers/index.js';
import { DEFAULT_PLATFORM, OciLayout, copyGraph, loadImage } from '../../src/oci/index.js';
import { pushSquashedImage, squashImage, squashedImage } from '../../src/subassembly/index.js';
import { tempDir } from '../harness/index.js';
import { craftImage, describeTree, dir, file, opaque, umociUnpack, whiteout, type Entry } from './helpers.js';

// A squash above a base must apply on top of that base exactly as the squashed layers did: the
// deletions they make in the base survive as markers, and directories they only imply do not
// reset the base's own. umoci, applying the layers one by one, is the oracle.

const BASE: readonly Entry[] = [
  dir('a/'),
  file('a/x', 'x'),
  dir('a/sub/'),
  file('a/sub/y', 'y'),
  dir('d/'),
  file('d/1', '1'),
  file('d/2', '2'),
  file('f', 'a file'),
  dir('keep/'),
  file('keep/k', 'k'),
  dir('root/', { mode: 0o700 }),
  dir('tmp/', { mode: 0o1777 }),
  dir('usr/'),
  file('usr/old', 'old'),
];

const UPPER: readonly (readonly Entry[])[] = [
  [
    whiteout('a'), // deleted here, created again above: the base's a/x must stay hidden
    dir('d/'),
    opaque('d'),
    file('d/3', '3'), // then all of d goes above
    whiteout('f'), // a file that becomes a directory above
    dir('keep/'),
    opaque('keep'),
    file('keep/n', 'n'),
    file('tmp/cache', 'only implies tmp/'),
    whiteout('usr/old'),
  ],
  [
    dir('a/', { mode: 0o750 }),
    file('a/new', 'new'),
    whiteout('d'),
    dir('f/'),
    file('f/inside', 'inside'),
    whiteout('keep/k'), // beneath an opaque directory: redundant
    whiteout('root/never-there'),
    file('root/.profile', 'PS1=#', { uid: 0, gid: 0, mode: 0o600 }),
  ],
];

let scratch: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  scratch = await tempDir('stevedore-above-base-');
});

afterAll(async () => {
  await scratch?.remove();
});

describe('squash above a base', () => {
  it('keeps the deletions that act on the base and leaves its directories alone', async () => {
    const base = await craftImage([BASE]);
    const image = await craftImage(UPPER, { base, store: base.store });
    const baseImage = await loadImage(base.store, base.descriptor, { platform: DEFAULT_PLATFORM });
    const source = await loadImage(image.store, image.descriptor, { platform: DEFAULT_PLATFORM });
    const workDir = join(scratch.path, 'work');
    await mkdir(workDir);
    const squashed = await squashImage({ reference: 'test/upper', image: source, store: image.store }, { base: baseImage, workDir });

    const names: string[] = [];
    for await (const { header } of readTar(decompress(createReadStream(squashed.file)))) names.push(header.name);
    expect(names).toEqual([
      '.wh.d',
      'a/',
      'a/.wh..wh..opq',
      'a/new',
      'f/',
      'f/.wh..wh..opq',
      'f/inside',
      'keep/',
      'keep/.wh..wh..opq',
      'keep/n',
      'root/.profile',
      'root/.wh.never-there',
      // no tmp/: the layers only implied it
      'tmp/cache',
      'usr/.wh.old',
    ]);

    const layout = await OciLayout.open(join(scratch.path, 'layout'), { create: true });
    await copyGraph(image.store, layout, image.descriptor);
    await layout.tag(image.descriptor, 'layered');
    const result = squashedImage(squashed, source, { base: baseImage });
    const manifest = await pushSquashedImage(layout, result, squashed, { baseStore: base.store });
    await layout.tag(manifest, 'squashed');
    await validateImage(layout, manifest);

    const expected = await describeTree(await umociUnpack(layout.dir, 'layered', join(scratch.path, 'layered')));
    const actual = await describeTree(await umociUnpack(layout.dir, 'squashed', join(scratch.path, 'squashed')));
    expect(actual).toEqual(expected);
    expect(actual).toContain('d tmp 1777 0:0');
    expect(actual).toContain('d root 700 0:0');
    expect(actual.filter((line) => / (a|d|keep|usr)\//.test(line))).toEqual([
      expect.stringMatching(/^f a\/new /),
      expect.stringMatching(/^f keep\/n /),
    ]);
  }, 60_000);
});
