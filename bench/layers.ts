// `npm run bench -- layers [--size MiB] [--runs N] [--json FILE] [--seed N] [--no-micro]`
//
// Builds a layer from a seeded tree (thousands of files, about 20% incompressible) with
// Stevedore and with the native tools, in the same run, and prints MB/s (of uncompressed tar)
// and the Stevedore/native ratio per row. Each Stevedore measurement runs in its own child
// process so its peak RSS (process.resourceUsage().maxRSS) is its own. The blob goes to
// /dev/null, as the native pipelines' output does (they only hash it). With --runs N every row
// is measured N times and the fastest run is kept (the machine may be shared).
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deflateRawSync } from 'node:zlib';
import { deflateSync as fflateDeflate } from 'fflate';
import { buildLayer, closeDeflateWorkers, directorySource, tarChunks } from '../src/layers/index.js';
import type { Compression } from '../src/oci/index.js';
import { generateTree } from '../test/fixtures/tree.js';
import { machineNote, parseArgs, printTable, timeShell, writeJson } from './lib/report.js';

interface ChildConfig {
  readonly root: string;
  readonly compression: Compression;
  readonly level?: number;
  readonly workers: number;
}

interface ChildResult {
  readonly seconds: number;
  readonly size: number;
  readonly uncompressedSize: number;
  readonly digest: string;
  readonly maxRssMiB: number;
}

interface Row {
  readonly name: string;
  readonly seconds: number;
  readonly mbps: number;
  readonly compressedMiB?: number;
  readonly native?: string;
  readonly nativeMbps?: number;
  readonly ratio?: number;
  readonly maxRssMiB?: number;
}

const MiB = 1024 * 1024;
const self = fileURLToPath(import.meta.url);

/** The child side: one layer build, timed, reported as JSON on stdout. */
async function child(config: ChildConfig): Promise<void> {
  const start = process.hrtime.bigint();
  const layer = await buildLayer(directorySource(config.root), createWriteStream('/dev/null'), {
    compression: config.compression,
    level: config.level,
    workers: config.workers,
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await closeDeflateWorkers();
  const result: ChildResult = {
    seconds,
    size: layer.size,
    uncompressedSize: layer.uncompressedSize,
    digest: layer.digest,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(JSON.stringify(result));
}

function runChild(config: ChildConfig): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [...process.execArgv, self, '--child', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    proc.stdout.on('data', (c: Buffer) => out.push(c));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) reject(new Error(`benchmark child exited with ${code}`));
      else resolve(JSON.parse(Buffer.concat(out).toString()) as ChildResult);
    });
  });
}

/** Single-stream deflate throughput of node:zlib and fflate on the same sample (MB/s). */
async function microBench(root: string): Promise<Array<{ name: string; mbps: number }>> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of tarChunks(directorySource(root))) {
    chunks.push(chunk);
    total += chunk.byteLength;
    if (total >= 32 * MiB) break;
  }
  const sample = Buffer.concat(chunks).subarray(0, 32 * MiB);
  const blocks = Array.from({ length: sample.byteLength / MiB }, (_, i) => sample.subarray(i * MiB, (i + 1) * MiB));
  const time = (fn: (block: Uint8Array) => void): number => {
    const start = process.hrtime.bigint();
    for (const block of blocks) fn(block);
    return sample.byteLength / 1e6 / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  const results: Array<{ name: string; mbps: number }> = [];
  for (const level of [6, 1] as const) {
    results.push({ name: `node:zlib deflate -${level}`, mbps: time((b) => deflateRawSync(b, { level })) });
    results.push({ name: `fflate deflate -${level}`, mbps: time((b) => fflateDeflate(b, { level })) });
  }
  return results;
}

export async function run(args: string[]): Promise<void> {
  const options = parseArgs(args);
  const sizeMiB = Number(options.get('size') ?? 256);
  const seed = Number(options.get('seed') ?? 1);
  const runs = Math.max(1, Number(options.get('runs') ?? 1));
  const cores = availableParallelism();
  const base = await mkdtemp(join(tmpdir(), 'stevedore-bench-'));
  const root = join(base, 'tree');
  try {
    console.log(`generating a ${sizeMiB} MiB tree (seed ${seed}) in ${root} ...`);
    const started = Date.now();
    const tree = await generateTree(root, { bytes: sizeMiB * MiB, seed });
    console.log(`  ${tree.files} files, ${tree.directories} directories, ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // Warm the page cache so the first row does not pay for the disk.
    await timeShell(`tar -C '${root}' -cf - . > /dev/null`);

    const native = async (name: string, script: string): Promise<{ name: string; seconds: number }> => {
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < runs; i++) best = Math.min(best, (await timeShell(script.replaceAll('TREE', `'${root}'`))).seconds);
      return { name, seconds: best };
    };
    const nativeRows = {
      tar: await native('tar | sha256sum', 'tar -C TREE -cf - . | sha256sum'),
      gzip6: await native('tar | gzip -6 | sha256sum', 'tar -C TREE -cf - . | gzip -6 | sha256sum'),
      pigz6: await native(`tar | pigz -6 -p${cores} | sha256sum`, `tar -C TREE -cf - . | pigz -6 -p${cores} | sha256sum`),
      gzip1: await native('tar | gzip -1 | sha256sum', 'tar -C TREE -cf - . | gzip -1 | sha256sum'),
      pigz1: await native(`tar | pigz -1 -p${cores} | sha256sum`, `tar -C TREE -cf - . | pigz -1 -p${cores} | sha256sum`),
      zstd: await native('tar | zstd -3 -T0 | sha256sum', 'tar -C TREE -cf - . | zstd -q -3 -T0 | sha256sum'),
    };

    const ours = async (name: string, config: Omit<ChildConfig, 'root'>) => {
      let best: ChildResult | undefined;
      for (let i = 0; i < runs; i++) {
        const result = await runChild({ root, ...config });
        if (best !== undefined && result.digest !== best.digest) throw new Error(`${name}: two runs gave different digests`);
        if (best === undefined || result.seconds < best.seconds) best = { ...result, maxRssMiB: Math.max(result.maxRssMiB, best?.maxRssMiB ?? 0) };
        else best = { ...best, maxRssMiB: Math.max(result.maxRssMiB, best.maxRssMiB) };
      }
      return { name, ...best! };
    };
    const stevedore = {
      none: await ours('stevedore none', { compression: 'none', workers: cores }),
      gzip6: await ours(`stevedore gzip -6 (${cores} workers)`, { compression: 'gzip', level: 6, workers: cores }),
      gzip6single: await ours('stevedore gzip -6 (1 worker)', { compression: 'gzip', level: 6, workers: 1 }),
      gzip1: await ours(`stevedore gzip -1 (${cores} workers)`, { compression: 'gzip', level: 1, workers: cores }),
      zstd: await ours(`stevedore zstd -3 (${cores} workers)`, { compression: 'zstd', level: 3, workers: cores }),
    };
    if (stevedore.gzip6.digest !== stevedore.gzip6single.digest) throw new Error('gzip output depends on the worker count');

    const tarBytes = stevedore.none.uncompressedSize;
    const mbps = (seconds: number): number => tarBytes / 1e6 / seconds;
    const row = (ourRow: (typeof stevedore)[keyof typeof stevedore], against: { name: string; seconds: number }): Row => ({
      name: ourRow.name,
      seconds: ourRow.seconds,
      mbps: mbps(ourRow.seconds),
      compressedMiB: ourRow.size / MiB,
      native: against.name,
      nativeMbps: mbps(against.seconds),
      ratio: against.seconds / ourRow.seconds,
      maxRssMiB: ourRow.maxRssMiB,
    });
    const rows: Row[] = [
      row(stevedore.gzip6, nativeRows.pigz6),
      row(stevedore.gzip6, nativeRows.gzip6),
      row(stevedore.gzip6single, nativeRows.gzip6),
      row(stevedore.gzip1, nativeRows.pigz1),
      row(stevedore.gzip1, nativeRows.gzip1),
      row(stevedore.zstd, nativeRows.zstd),
      row(stevedore.none, nativeRows.tar),
    ];
    const micro = options.has('no-micro') ? [] : await microBench(root);

    console.log(`\nlayer build of a ${(tarBytes / MiB).toFixed(0)} MiB tar, ${tree.files} files (MB/s of uncompressed tar; ratio = Stevedore/native speed)\n`);
    printTable(
      ['Stevedore', 's', 'MB/s', 'blob MiB', 'native', 'native MB/s', 'ratio', 'RSS MiB'],
      rows.map((r) => [r.name, r.seconds.toFixed(2), r.mbps.toFixed(1), r.compressedMiB!.toFixed(1), r.native!, r.nativeMbps!.toFixed(1), `${r.ratio!.toFixed(2)}x`, r.maxRssMiB!.toFixed(0)]),
    );
    if (micro.length > 0) {
      console.log('\nsingle-stream deflate, 1 MiB blocks of the same tar (MB/s)\n');
      printTable(['compressor', 'MB/s'], micro.map((m) => [m.name, m.mbps.toFixed(1)]));
    }
    const jsonPath = options.get('json');
    if (jsonPath !== undefined) {
      await writeJson(jsonPath, { benchmark: 'layers', machine: machineNote(), sizeMiB, seed, runs, tree, tarBytes, rows, native: nativeRows, micro });
      console.log(`\nwrote ${jsonPath}`);
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** The lead's dispatcher calls `run`; this alias is the name the issue asked for. */
export const benchLayers = run;

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3]!) as ChildConfig);
}
