import { link, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { applyLayers, buildLayer, directorySource, extractLayer, flattenLayers, opaqueWhiteoutPath, whiteoutPath } from '../../src/layers/index.js';
import { Rng, generateTree, textBytes } from '../fixtures/tree.js';
import { Collector, TempDirs, snapshot } from './helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

/** Files and directories of a tree (relative paths). */
async function listTree(root: string): Promise<{ files: string[]; directories: string[] }> {
  const files: string[] = [];
  const directories: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    for (const entry of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        directories.push(path);
        await walk(path);
      } else files.push(path);
    }
  };
  await walk('');
  return { files: files.sort(), directories: directories.sort() };
}

async function put(upper: string, path: string, content: Uint8Array | string): Promise<void> {
  await mkdir(dirname(join(upper, path)), { recursive: true });
  await writeFile(join(upper, path), content);
}

/**
 * An upper layer as an overlay upper directory would hold it: changed files, whiteout files for
 * deletions, an opaque marker for a directory whose lower content is hidden, type changes in
 * both directions, and a fresh hardlinked pair. Targets are drawn from the current tree.
 */
async function randomUpper(rng: Rng, current: string, upper: string, layer: number): Promise<void> {
  const { files, directories } = await listTree(current);
  const taken = new Set<string>();
  const pick = (from: string[]): string | undefined => {
    for (let tries = 0; tries < 20 && from.length > 0; tries++) {
      const candidate = rng.pick(from);
      // One change per path and none beneath another change keeps the layer a valid diff.
      if (![...taken].some((t) => candidate === t || candidate.startsWith(`${t}/`) || t.startsWith(`${candidate}/`))) {
        taken.add(candidate);
        return candidate;
      }
    }
    return undefined;
  };
  await mkdir(upper, { recursive: true });
  for (let i = 0; i < Math.max(1, files.length / 10); i++) {
    const path = pick(files);
    if (path !== undefined) await put(upper, path, textBytes(rng, 1 + rng.int(3000)));
  }
  for (let i = 0; i < Math.max(1, files.length / 20); i++) {
    const path = pick(files);
    if (path !== undefined) await put(upper, whiteoutPath(path), '');
  }
  const deleted = pick(directories);
  if (deleted !== undefined) await put(upper, whiteoutPath(deleted), '');
  const opaque = pick(directories);
  if (opaque !== undefined) {
    await put(upper, opaqueWhiteoutPath(opaque), '');
    await put(upper, `${opaque}/fresh-${layer}.txt`, `fresh in layer ${layer}`);
  }
  const fileToDir = pick(files);
  if (fileToDir !== undefined) await put(upper, `${fileToDir}/now-a-directory`, 'child');
  const dirToFile = pick(directories);
  if (dirToFile !== undefined) await put(upper, dirToFile, 'was a directory');
  await put(upper, `links-${layer}/one`, `linked ${layer}`);
  await link(join(upper, `links-${layer}/one`), join(upper, `links-${layer}/two`));
}

describe('flattenLayers on random layer stacks', () => {
  it('matches applying the layers, for several seeds', async () => {
    for (const seed of [11, 12, 13]) {
      const work = await dirs.make();
      const rng = new Rng(seed);
      const base = join(work, 'layer-0');
      await generateTree(base, { bytes: 1024 * 1024, seed, maxFileSize: 16 * 1024 });
      const current = join(work, 'current');
      const blobs: Buffer[] = [];
      for (let layer = 0; layer < 4; layer++) {
        const upper = join(work, `layer-${layer}`);
        if (layer > 0) await randomUpper(rng, current, upper, layer);
        const out = new Collector();
        await buildLayer(directorySource(upper), out, { compression: layer % 2 === 0 ? 'gzip' : 'zstd' });
        blobs.push(out.bytes);
        await extractLayer(Readable.from([out.bytes]), current);
      }

      const applied = join(work, 'applied');
      await applyLayers(applied, blobs.map((b) => Readable.from([b])));
      const flat = await flattenLayers(blobs.map((b) => ({ content: () => Readable.from([b]) })), { tempDir: work });
      const squashed = new Collector();
      try {
        await buildLayer(flat, squashed, { compression: 'gzip' });
      } finally {
        await flat.dispose();
      }
      const extracted = join(work, 'flattened');
      await extractLayer(Readable.from([squashed.bytes]), extracted);
      const stripDirTimes = (tree: Record<string, string>) => Object.fromEntries(Object.entries(tree).map(([k, v]) => [k, v.replace(/^(dir \d+) t\d+$/, '$1')]));
      const want = stripDirTimes(await snapshot(applied, { mtimes: true }));
      expect(stripDirTimes(await snapshot(extracted, { mtimes: true }))).toEqual(want);
      expect(await snapshot(current)).toEqual(await snapshot(applied));
      expect(Object.keys(want).length).toBeGreaterThan(50);
    }
  });
});
