// `npm run bench -- unpack [--size 256M] [--max-file 64K] [--runs 3] [--json FILE]`
//
// Applying one gzip layer to an empty directory, as a build does with every base layer it
// unpacks: Stevedore's `extractLayer` (chroot-style path resolution, limits, the diffID hashed
// on the way) against GNU `tar -xzf`, in the same run. The layer is built by Stevedore from a
// seeded tree (test/fixtures/tree.ts; log-uniform file sizes up to --max-file, so about 8,000
// files for 256 MiB: a distribution's base layer has files of that order). Every extraction
// writes to an ext4 filesystem made for it (bench/lib/filesystem.ts); the tools take turns
// going first; the fastest of --runs is kept for each, and the ratio is Stevedore / tar.
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { OCI } from '../src/oci/index.js';
import { buildLayerFile, closeDeflateWorkers, directorySource, extractLayer } from '../src/layers/index.js';
import { run as runProcess, tempDir } from '../test/harness/index.js';
import { generateTree } from '../test/fixtures/tree.js';
import { onFreshFilesystem } from './lib/filesystem.js';
import { machineNote, parseArgs, parseSize, printTable, resultFile, timeShell, writeJson } from './lib/report.js';

export async function run(args: string[]): Promise<void> {
  const flags = parseArgs(args);
  const bytes = parseSize(flags.get('size') ?? '256M');
  const maxFile = parseSize(flags.get('max-file') ?? '64K');
  const runs = Math.max(1, Number(flags.get('runs') ?? 3));
  const scratch = await tempDir('stevedore-bench-unpack-');
  try {
    const tree = await generateTree(join(scratch.path, 'tree'), { bytes, maxFileSize: maxFile, seed: 7 });
    const blob = join(scratch.path, 'layer.tar.gz');
    const layer = await buildLayerFile(directorySource(join(scratch.path, 'tree')), blob, { compression: 'gzip' });
    console.log(`one gzip layer: ${tree.files} files, ${tree.directories} directories, ${(layer.uncompressedSize / 1024 ** 2).toFixed(0)} MiB of tar, ${(layer.size / 1024 ** 2).toFixed(0)} MiB compressed`);

    const ours: number[] = [];
    const theirs: number[] = [];
    const stevedore = async (i: number): Promise<void> => {
      ours.push(
        await onFreshFilesystem(scratch.path, `stevedore-${i}`, async (root) => {
          const dir = join(root, 'root');
          const started = process.hrtime.bigint();
          const result = await extractLayer({ content: () => createReadStream(blob), mediaType: OCI.layerGzip }, dir);
          if (result.diffId !== layer.diffId) throw new Error(`extracted diffID ${result.diffId}, built ${layer.diffId}`);
          return Number(process.hrtime.bigint() - started) / 1e9;
        }),
      );
    };
    const tar = async (i: number): Promise<void> => {
      theirs.push(
        await onFreshFilesystem(scratch.path, `tar-${i}`, async (dir) => (await timeShell(`tar -xzf ${blob} -C ${dir}`)).seconds),
      );
    };
    for (let i = 0; i < runs; i++) {
      if (i % 2 === 0) {
        await stevedore(i);
        await tar(i);
      } else {
        await tar(i);
        await stevedore(i);
      }
      console.log(`  run ${i + 1}: stevedore ${ours.at(-1)!.toFixed(2)} s, tar -xzf ${theirs.at(-1)!.toFixed(2)} s`);
    }
    const best = (values: number[]): number => Math.min(...values);
    const mbps = (seconds: number): string => (layer.uncompressedSize / 1e6 / seconds).toFixed(0);
    const filesPerSecond = (seconds: number): string => (tree.files / seconds).toFixed(0);
    printTable(
      ['unpack', 'best s', 'MB/s (tar)', 'files/s', 'vs tar -xzf'],
      [
        ['stevedore extractLayer', best(ours).toFixed(2), mbps(best(ours)), filesPerSecond(best(ours)), `${(best(ours) / best(theirs)).toFixed(2)}x`],
        ['GNU tar -xzf', best(theirs).toFixed(2), mbps(best(theirs)), filesPerSecond(best(theirs)), '1.00x'],
      ],
    );
    await writeJson(resultFile(flags, 'unpack'), { benchmark: 'unpack', machine: machineNote(), tree, layer: { size: layer.size, uncompressedSize: layer.uncompressedSize }, stevedore: ours, tar: theirs });
  } finally {
    await runProcess('rm', ['-rf', scratch.path]).catch(() => undefined);
    await closeDeflateWorkers();
  }
}
