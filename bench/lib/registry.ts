// The registry benchmarks behind `npm run bench -- push` and `-- pull`.
//
// Two images, built once per run as OCI layouts: one layer of SIZE (default 1 GiB, seeded
// pseudo-random bytes in a tar, gzip level 0 so neither tool recompresses), and 200 small layers.
// Each is pushed to (or pulled from) a freshly started local docker-registry by Stevedore (in a
// child process, so its peak RSS is its own) and by `skopeo copy`, with the same source and a
// fresh registry for every push (skopeo mounts blobs it has seen in a registry before). Prints
// MB/s, the Stevedore/skopeo ratio and peak RSS, and writes JSON next to a note of the machine.
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createGzip, gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { copyGraph, OCI, OciLayout, type Descriptor, type Digest } from '../../src/oci/index.js';
import { anonymousCredentials, RegistryClient } from '../../src/registry/index.js';
import { startRegistry, tempDir } from '../../test/harness/index.js';
import { machineNote, parseArgs, parseSize, printTable, writeJson } from './report.js';

type Direction = 'push' | 'pull';

interface Workload {
  readonly name: string;
  readonly layout: string;
  readonly tag: string;
  /** Bytes of all blobs (what moves over the wire). */
  readonly bytes: number;
  readonly blobs: number;
}

interface Measurement {
  readonly seconds: number;
  readonly maxRssMiB: number | undefined;
}

interface Row {
  readonly workload: string;
  readonly direction: Direction;
  readonly tool: 'stevedore' | 'skopeo';
  readonly seconds: number;
  readonly mbps: number;
  readonly maxRssMiB: number | undefined;
}

interface ChildConfig {
  readonly direction: Direction;
  readonly host: string;
  readonly repository: string;
  readonly tag: string;
  readonly layout: string;
  readonly concurrency: number;
  /** The client's `uploadChunkSize` (undefined: the library default). */
  readonly chunkSize: number | undefined;
}

const self = fileURLToPath(import.meta.url);
const TAG = 'bench';

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Seeded pseudo-random bytes (AES-256-CTR over zeros): fast and the same on every run. */
function* seededBytes(total: number, seed: string, chunk = 1 << 20): Generator<Buffer> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunk);
  for (let left = total; left > 0; left -= chunk) yield cipher.update(zeros.subarray(0, Math.min(chunk, left)));
}

/** Streams a gzip (level 0) tar with one file of `size` seeded bytes into the layout's blobs. */
async function writeLayerBlob(layoutDir: string, size: number, seed: string): Promise<{ layer: Descriptor; diffId: Digest }> {
  const blobs = join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const temp = join(layoutDir, `layer-${seed}.tmp`);
  const tar = pack();
  const tarHash = createHash('sha256');
  const blobHash = createHash('sha256');
  let blobSize = 0;
  const gzip = createGzip({ level: 0 });
  tar.on('data', (chunk: unknown) => {
    tarHash.update(chunk as Buffer);
  });
  gzip.on('data', (chunk: Buffer) => {
    blobHash.update(chunk);
    blobSize += chunk.length;
  });
  const written = pipeline(tar, gzip, createWriteStream(temp));
  const entry = tar.entry({ name: 'payload.bin', size, mtime: new Date(0), uid: 0, gid: 0, mode: 0o644 });
  await pipeline(Readable.from(seededBytes(size, seed)), entry);
  tar.finalize();
  await written;
  const hex = blobHash.digest('hex');
  await rename(temp, join(blobs, hex));
  return { layer: { mediaType: OCI.layerGzip, digest: `sha256:${hex}` as Digest, size: blobSize }, diffId: `sha256:${tarHash.digest('hex')}` as Digest };
}

/** Writes config and manifest for `layers` into the layout and tags it. */
async function finishImage(layoutDir: string, layers: readonly { layer: Descriptor; diffId: Digest }[]): Promise<number> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) }, config: {} }),
  );
  const configDesc: Descriptor = { mediaType: OCI.config, digest: `sha256:${sha256Hex(config)}` as Digest, size: config.length };
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI.manifest, config: configDesc, layers: layers.map((l) => l.layer) }));
  const manifestDesc: Descriptor = { mediaType: OCI.manifest, digest: `sha256:${sha256Hex(manifest)}` as Digest, size: manifest.length };
  const layout = await OciLayout.open(layoutDir, { create: true });
  await layout.push(configDesc, config);
  await layout.push(manifestDesc, manifest);
  await layout.tag(manifestDesc, TAG);
  return layers.reduce((sum, l) => sum + l.layer.size, config.length + manifest.length);
}

async function makeLargeImage(dir: string, size: number): Promise<Workload> {
  const layout = join(dir, 'large');
  const layer = await writeLayerBlob(layout, size, 'large');
  const bytes = await finishImage(layout, [layer]);
  return { name: `1 layer of ${formatSize(size)}`, layout, tag: TAG, bytes, blobs: 3 };
}

async function makeManyImage(dir: string, count: number, size: number): Promise<Workload> {
  const layout = join(dir, 'many');
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layers: { layer: Descriptor; diffId: Digest }[] = [];
  for (let i = 0; i < count; i++) {
    const tar = await new Promise<Buffer>((resolve, reject) => {
      const p = pack();
      const chunks: Buffer[] = [];
      p.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      p.on('end', () => resolve(Buffer.concat(chunks)));
      p.on('error', reject);
      p.entry({ name: `file-${i}.bin`, mtime: new Date(0), uid: 0, gid: 0, mode: 0o644 }, Buffer.concat([...seededBytes(size, `small-${i}`)]));
      p.finalize();
    });
    const blob = gzipSync(tar, { level: 0 });
    const hex = sha256Hex(blob);
    await writeFile(join(blobs, hex), blob);
    layers.push({ layer: { mediaType: OCI.layerGzip, digest: `sha256:${hex}` as Digest, size: blob.length }, diffId: `sha256:${sha256Hex(tar)}` as Digest });
  }
  const bytes = await finishImage(layout, layers);
  return { name: `${count} layers of ${formatSize(size)}`, layout, tag: TAG, bytes, blobs: count + 2 };
}

/** Runs a command under GNU time for its peak RSS (KiB); falls back to no RSS without it. */
async function timed(command: string, args: readonly string[]): Promise<Measurement> {
  const useTime = await hasGnuTime();
  const start = process.hrtime.bigint();
  const stderr = await new Promise<string>((resolve, reject) => {
    const child = useTime
      ? spawn('/usr/bin/time', ['-f', 'STEVEDORE_MAXRSS=%M', command, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(command, [...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const text = Buffer.concat(err).toString();
      if (code === 0) resolve(text);
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${text.slice(-1000)}`));
    });
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rss = /STEVEDORE_MAXRSS=(\d+)/.exec(stderr);
  return { seconds, maxRssMiB: rss ? Number(rss[1]) / 1024 : undefined };
}

let gnuTime: Promise<boolean> | undefined;
function hasGnuTime(): Promise<boolean> {
  gnuTime ??= new Promise((resolve) => {
    const child = spawn('/usr/bin/time', ['-f', '%M', 'true'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
  return gnuTime;
}

/** Stevedore in a child process: the time is measured inside it (after module loading). */
async function runStevedore(config: ChildConfig): Promise<Measurement> {
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, self, '--child', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out).toString()) : reject(new Error(`stevedore child exited with ${code}`))));
  });
  return JSON.parse(stdout) as Measurement;
}

async function child(config: ChildConfig): Promise<void> {
  const client = new RegistryClient(config.host, { credentials: anonymousCredentials, ...(config.chunkSize === undefined ? {} : { uploadChunkSize: config.chunkSize }) });
  const repo = client.repository(config.repository);
  const start = process.hrtime.bigint();
  if (config.direction === 'push') {
    const layout = await OciLayout.open(config.layout);
    const root = await layout.resolve(config.tag);
    await copyGraph(layout, repo, root, { concurrency: config.concurrency });
    await repo.tag(root, config.tag);
  } else {
    const root = await repo.resolve(config.tag);
    const layout = await OciLayout.open(config.layout, { create: true });
    await copyGraph(repo, layout, root, { concurrency: config.concurrency });
    await layout.tag(root, config.tag);
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await client.close();
  process.stdout.write(JSON.stringify({ seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
}

function skopeo(...args: string[]): Promise<Measurement> {
  return timed('skopeo', ['--insecure-policy', ...args]);
}

async function measure(direction: Direction, workload: Workload, scratch: string, concurrency: number, chunkSize: number | undefined): Promise<Row[]> {
  const storage = { parentDirectory: scratch };
  const rows: Row[] = [];
  const mbps = (m: Measurement): number => workload.bytes / 1e6 / m.seconds;
  const repository = 'bench/image';
  if (direction === 'push') {
    for (const tool of ['stevedore', 'skopeo'] as const) {
      const registry = await startRegistry(storage);
      try {
        const m =
          tool === 'stevedore'
            ? await runStevedore({ direction, host: registry.host, repository, tag: TAG, layout: workload.layout, concurrency, chunkSize })
            : await skopeo('copy', '--dest-tls-verify=false', `oci:${workload.layout}:${TAG}`, `docker://${registry.host}/${repository}:${TAG}`);
        rows.push({ workload: workload.name, direction, tool, seconds: m.seconds, mbps: mbps(m), maxRssMiB: m.maxRssMiB });
      } finally {
        await registry.stop();
      }
    }
    return rows;
  }
  const registry = await startRegistry(storage);
  try {
    // Seed the registry once (with Stevedore; the content is identical either way).
    await runStevedore({ direction: 'push', host: registry.host, repository, tag: TAG, layout: workload.layout, concurrency, chunkSize });
    for (const tool of ['stevedore', 'skopeo'] as const) {
      const out = join(scratch, `pull-${tool}-${Date.now()}`);
      try {
        const m =
          tool === 'stevedore'
            ? await runStevedore({ direction, host: registry.host, repository, tag: TAG, layout: out, concurrency, chunkSize })
            : await skopeo('copy', '--src-tls-verify=false', `docker://${registry.host}/${repository}:${TAG}`, `oci:${out}:${TAG}`);
        rows.push({ workload: workload.name, direction, tool, seconds: m.seconds, mbps: mbps(m), maxRssMiB: m.maxRssMiB });
      } finally {
        await rm(out, { recursive: true, force: true });
      }
    }
  } finally {
    await registry.stop();
  }
  return rows;
}

function formatSize(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(bytes % 1024 ** 3 === 0 ? 0 : 1)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(0)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

/**
 * `npm run bench -- push|pull [--size 1G] [--layers 200] [--layer-size 32K] [--concurrency 8]
 * [--chunk-size 16M|0] [--disk] [--json FILE] [--only large|many]`
 */
export async function runRegistryBench(direction: Direction, args: readonly string[]): Promise<void> {
  const options = parseArgs(args);
  const size = parseSize(options.get('size') ?? '1G');
  const count = Number(options.get('layers') ?? '200');
  const layerSize = parseSize(options.get('layer-size') ?? '32K');
  const concurrency = Number(options.get('concurrency') ?? '8');
  const only = options.get('only');
  const chunkOption = options.get('chunk-size');
  const chunkSize = chunkOption === undefined ? undefined : chunkOption === '0' ? 0 : parseSize(chunkOption);
  // By default everything (source layouts, registries, pulled layouts) lives on a tmpfs when
  // there is one, so the numbers measure the clients rather than the disk's fsync latency.
  const parent = options.get('disk') === 'true' || !existsSync('/dev/shm') ? tmpdir() : '/dev/shm';
  const scratch = await tempDir('stevedore-bench-registry-', parent);
  try {
    const workloads: Workload[] = [];
    if (only === undefined || only === 'large') workloads.push(await makeLargeImage(scratch.path, size));
    if (only === undefined || only === 'many') workloads.push(await makeManyImage(scratch.path, count, layerSize));
    const rows: Row[] = [];
    for (const workload of workloads) rows.push(...(await measure(direction, workload, scratch.path, concurrency, chunkSize)));

    const table = workloads.map((w) => {
      const ours = rows.find((r) => r.workload === w.name && r.tool === 'stevedore')!;
      const theirs = rows.find((r) => r.workload === w.name && r.tool === 'skopeo')!;
      const rss = (r: Row): string => (r.maxRssMiB === undefined ? 'n/a' : `${r.maxRssMiB.toFixed(0)} MiB`);
      return [
        `${direction} ${w.name} (${w.blobs} blobs)`,
        ours.mbps.toFixed(1),
        theirs.mbps.toFixed(1),
        `${(ours.mbps / theirs.mbps).toFixed(2)}x`,
        rss(ours),
        rss(theirs),
        `${ours.seconds.toFixed(2)} / ${theirs.seconds.toFixed(2)}`,
      ];
    });
    console.log(`storage: ${parent}, concurrency ${concurrency}, upload chunk size ${chunkSize ?? 'default'}`);
    printTable(['workload', 'stevedore MB/s', 'skopeo MB/s', 'ratio', 'stevedore RSS', 'skopeo RSS', 'seconds (s / k)'], table);
    const json = options.get('json');
    if (json !== undefined) await writeJson(json, { benchmark: direction, machine: machineNote(), storage: parent, concurrency, chunkSize: chunkSize ?? 'default', rows });
  } finally {
    await scratch.remove();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--child') {
  await child(JSON.parse(process.argv[3]!) as ChildConfig);
}
