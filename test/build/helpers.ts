import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, type BuildEvent, type BuildOptions, type BuildResult } from '../../src/build/index.js';
import { OciLayout, type Descriptor, type ImageConfig } from '../../src/oci/index.js';
import { decompress, readTar, validateImage, type TarHeader } from '../../src/layers/index.js';
import { run, startRegistry, tempDir, type TestRegistry } from '../harness/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../fixtures/make-busybox.js';

/**
 * Shared pieces of the build-engine tests: one registry and one busybox base per suite, a build
 * wrapper that collects events, and a tree walker for comparing unpacked images.
 */

export interface BuildSuite {
  readonly registry: TestRegistry;
  /** `127.0.0.1:PORT/busybox:latest`, the base of the corpus. */
  readonly busybox: string;
  /** An OCI layout holding the same busybox image (tag `latest`). */
  readonly busyboxLayout: string;
  /** A scratch directory for the suite (removed by `stop`). */
  readonly dir: string;
  /** A cache directory for unpacked layers, shared by the suite's builds. */
  readonly cacheDir: string;
  stop(): Promise<void>;
}

export async function startBuildSuite(): Promise<BuildSuite> {
  const dir = await tempDir('stevedore-build-suite-');
  try {
    const registry = await startRegistry();
    const busyboxLayout = join(dir.path, 'busybox');
    const image = await makeBusyboxImage({ dir: busyboxLayout });
    const busybox = `${registry.host}/busybox:latest`;
    await pushBusyboxImage(image, busybox);
    const cacheDir = join(dir.path, 'cache');
    await mkdir(cacheDir);
    return {
      registry,
      busybox,
      busyboxLayout,
      dir: dir.path,
      cacheDir,
      stop: async () => {
        await registry.stop();
        await dir.remove();
      },
    };
  } catch (err) {
    await dir.remove();
    throw err;
  }
}

export interface BuildRun {
  readonly result: BuildResult;
  readonly events: readonly BuildEvent[];
}

/** Runs a build to the end, collecting its events; rejects with the build's error. */
export async function runBuild(options: BuildOptions): Promise<BuildRun> {
  const events: BuildEvent[] = [];
  const job = build({ ...options, onEvent: (e) => events.push(e) });
  const result = await job.result;
  return { result, events };
}

/** Like `runBuild`, for builds that must fail: the error, and the events until then. */
export async function failBuild(options: BuildOptions): Promise<{ error: unknown; events: readonly BuildEvent[] }> {
  const events: BuildEvent[] = [];
  const job = build({ ...options, onEvent: (e) => events.push(e) });
  try {
    await job.result;
  } catch (error) {
    return { error, events };
  }
  throw new Error('the build succeeded but was expected to fail');
}

/** Copies a corpus case (or any directory) into a fresh temporary context. */
let contexts = 0;

/** A fresh context directory in the suite's scratch space with these files (a string is a file's content). */
export async function writeContext(suite: Pick<BuildSuite, 'dir'>, files: Record<string, string>): Promise<string> {
  const dir = join(suite.dir, `ctx-${++contexts}`);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

export async function copyContext(source: string, into: string): Promise<string> {
  await rm(into, { recursive: true, force: true });
  await cp(source, into, { recursive: true, verbatimSymlinks: true });
  return into;
}

/** One entry of an unpacked tree, as compared across builders (times are not compared). */
export interface TreeEntry {
  readonly type: 'file' | 'directory' | 'symlink' | 'other';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size?: number;
  readonly sha256?: string;
  readonly link?: string;
}

/** Walks a root filesystem into `path → entry` (paths relative, `/`-separated). */
export async function readTree(root: string): Promise<Map<string, TreeEntry>> {
  const tree = new Map<string, TreeEntry>();
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(rel === '' ? root : join(root, rel))).sort();
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const abs = join(root, path);
      const st = await lstat(abs);
      const common = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
      if (st.isDirectory()) {
        tree.set(path, { type: 'directory', ...common });
        await walk(path);
      } else if (st.isSymbolicLink()) {
        tree.set(path, { type: 'symlink', ...common, mode: 0, link: await readlink(abs) });
      } else if (st.isFile()) {
        tree.set(path, { type: 'file', ...common, size: st.size, sha256: createHash('sha256').update(await readFile(abs)).digest('hex') });
      } else {
        tree.set(path, { type: 'other', ...common });
      }
    }
  };
  await walk('');
  return tree;
}

/** `umoci raw unpack` of an image in a layout into `dir/rootfs`; returns the rootfs path. */
export async function unpackLayout(layoutDir: string, tag: string, dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  await rm(rootfs, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await run('umoci', ['raw', 'unpack', '--image', `${layoutDir}:${tag}`, rootfs]);
  return rootfs;
}

/** The config of an image in a layout. */
export async function layoutConfig(layoutDir: string, tag: string): Promise<ImageConfig> {
  const layout = await OciLayout.open(layoutDir);
  const desc = await layout.resolve(tag);
  const manifest = JSON.parse((await readAll(await layout.fetch(desc))).toString('utf8')) as { config: { digest: string; size: number; mediaType: string } };
  return JSON.parse((await readAll(await layout.fetch({ ...manifest.config, digest: manifest.config.digest as never }))).toString('utf8')) as ImageConfig;
}

async function readAll(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

/** validateImage on an image in a layout. */
export async function validateLayoutImage(layoutDir: string, tag: string): Promise<void> {
  const layout = await OciLayout.open(layoutDir);
  await validateImage(layout, await layout.resolve(tag));
}

export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** `skopeo inspect` of a registry image over plain HTTP; returns its parsed output. */
export async function skopeoInspect(reference: string): Promise<{ Digest: string; Layers: string[] }> {
  const { stdout } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${reference}`]);
  return JSON.parse(stdout) as { Digest: string; Layers: string[] };
}

/** The tar headers of layer `index` (negative: from the top) of an image in a layout. */
export async function layerHeaders(layoutDir: string, tag: string, index: number): Promise<TarHeader[]> {
  const layout = await OciLayout.open(layoutDir);
  const desc = await layout.resolve(tag);
  const manifest = JSON.parse((await readAll(await layout.fetch(desc))).toString('utf8')) as { layers: Descriptor[] };
  const layer = manifest.layers.at(index);
  if (layer === undefined) throw new Error(`no layer ${index}`);
  const headers: TarHeader[] = [];
  for await (const entry of readTar(decompress(await layout.fetch(layer)))) {
    headers.push(entry.header);
    for await (const _chunk of entry.content) void _chunk;
  }
  return headers;
}

/** The manifest of an image in a layout. */
export async function layoutManifest(layoutDir: string, tag: string): Promise<{ layers: Descriptor[]; config: Descriptor }> {
  const layout = await OciLayout.open(layoutDir);
  const desc = await layout.resolve(tag);
  return JSON.parse((await readAll(await layout.fetch(desc))).toString('utf8')) as { layers: Descriptor[]; config: Descriptor };
}
