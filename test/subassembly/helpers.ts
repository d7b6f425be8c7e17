import { createHash } from 'node:crypto';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { copyGraph, MemoryStore, OCI, type Descriptor, type Digest, type Platform, type ReadOnlyStorage } from '../../src/oci/index.js';
import type { RegistryClientPool } from '../../src/registry/index.js';
import { run } from '../harness/index.js';

/** An entry of a crafted layer: anything the squash must handle, owners included. */
export interface Entry {
  readonly name: string;
  readonly type?: 'file' | 'directory' | 'symlink';
  readonly content?: string;
  readonly linkname?: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

export const dir = (name: string, extra: Partial<Entry> = {}): Entry => ({ name, type: 'directory', ...extra });
export const file = (name: string, content: string, extra: Partial<Entry> = {}): Entry => ({ name, content, ...extra });
/** A whiteout: `.wh.NAME` next to what it deletes. */
export const whiteout = (path: string): Entry => {
  const slash = path.lastIndexOf('/');
  return { name: slash < 0 ? `.wh.${path}` : `${path.slice(0, slash)}/.wh.${path.slice(slash + 1)}`, content: '' };
};
/** An opaque marker: hides everything the lower layers had beneath `directory`. */
export const opaque = (directory: string): Entry => ({ name: `${directory}/.wh..wh..opq`, content: '' });

function sha256(bytes: Uint8Array | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
}

/** A tar in the order given, mtime 0, with the owners asked for. */
export async function tarOf(entries: readonly Entry[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const ended = new Promise<void>((resolve, reject) => {
    tar.on('end', resolve);
    tar.on('error', reject);
  });
  for (const e of entries) {
    const header = { name: e.name, mtime: new Date(0), uid: e.uid ?? 0, gid: e.gid ?? 0 };
    const type = e.type ?? 'file';
    if (type === 'directory') tar.entry({ ...header, type: 'directory', mode: e.mode ?? 0o755 });
    else if (type === 'symlink') tar.entry({ ...header, type: 'symlink', mode: 0o777, linkname: e.linkname! });
    else {
      const content = Buffer.from(e.content ?? '');
      await new Promise<void>((resolve, reject) => tar.entry({ ...header, mode: e.mode ?? 0o644, size: content.length }, content, (err) => (err ? reject(err) : resolve())));
    }
  }
  tar.finalize();
  await ended;
  return Buffer.concat(chunks);
}

export interface CraftedImage {
  readonly store: ReadOnlyStorage;
  readonly descriptor: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly diffIds: readonly Digest[];
}

/**
 * A small OCI image in memory: one gzip layer per entry list (on top of `base`'s layers when
 * given), a config with Env/Cmd/WorkingDir/User, a manifest.
 */
export async function craftImage(
  layers: readonly (readonly Entry[])[],
  options: { platform?: Platform; base?: CraftedImage; store?: MemoryStore; config?: Record<string, unknown>; wrongDiffIds?: boolean } = {},
): Promise<CraftedImage & { readonly store: MemoryStore }> {
  const store = options.store ?? new MemoryStore();
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const descriptors: Descriptor[] = [...(options.base?.layers ?? [])];
  const diffIds: Digest[] = [...(options.base?.diffIds ?? [])];
  if (options.base !== undefined) {
    for (const layer of options.base.layers) await copyGraph(options.base.store, store, layer);
  }
  for (const entries of layers) {
    const tar = await tarOf(entries);
    const blob = gzipSync(tar);
    const desc: Descriptor = { mediaType: OCI.layerGzip, digest: sha256(blob), size: blob.length };
    await store.push(desc, blob);
    descriptors.push(desc);
    diffIds.push(sha256(tar));
  }
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      config: { Env: ['PATH=/usr/bin:/bin', 'APP=1'], Cmd: ['/bin/sh'], WorkingDir: '/opt', User: '1000:1001', Labels: { keep: 'me' }, ...options.config },
      rootfs: { type: 'layers', diff_ids: options.wrongDiffIds === true ? diffIds.map((d) => sha256(`not ${d}`)) : diffIds },
      history: diffIds.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layer ${i}` })),
    }),
  );
  const configDesc: Descriptor = { mediaType: OCI.config, digest: sha256(config), size: config.length };
  await store.push(configDesc, config);
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI.manifest, config: configDesc, layers: descriptors }));
  const descriptor: Descriptor = { mediaType: OCI.manifest, digest: sha256(manifest), size: manifest.length };
  await store.push(descriptor, manifest);
  return { store, descriptor, layers: descriptors, diffIds };
}

/** An index over images (each entry with its platform), in the store of the first. */
export async function craftIndex(images: readonly { image: CraftedImage & { readonly store: MemoryStore }; platform: Platform }[]): Promise<{ store: MemoryStore; descriptor: Descriptor }> {
  const store = images[0]!.image.store;
  for (const { image } of images.slice(1)) await copyGraph(image.store, store, image.descriptor);
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI.index, manifests: images.map(({ image, platform }) => ({ ...image.descriptor, platform })) }));
  const descriptor: Descriptor = { mediaType: OCI.index, digest: sha256(bytes), size: bytes.length };
  await store.push(descriptor, bytes);
  return { store, descriptor };
}

/** Pushes what `descriptor` names (an image or an index) to `reference`'s repository, tagged. */
export async function pushTo(pool: RegistryClientPool, source: { store: ReadOnlyStorage; descriptor: Descriptor }, registry: string, repository: string, tag: string): Promise<string> {
  const repo = pool.repository({ registry, repository });
  await copyGraph(source.store, repo, source.descriptor);
  await repo.tag(source.descriptor, tag);
  return `${registry}/${repository}:${tag}`;
}

/** A tree as a sorted list of lines: type, mode, owner, size and content hash or link target. */
export async function describeTree(root: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(join(root, rel))).sort();
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(root, path));
      const mode = (st.mode & 0o7777).toString(8);
      const owner = `${st.uid}:${st.gid}`;
      if (st.isDirectory()) {
        lines.push(`d ${path} ${mode} ${owner}`);
        await walk(path);
      } else if (st.isSymbolicLink()) {
        lines.push(`l ${path} -> ${await readlink(join(root, path))} ${owner}`);
      } else {
        lines.push(`f ${path} ${mode} ${owner} ${st.size} ${sha256(await readFile(join(root, path)))}`);
      }
    }
  };
  await walk('');
  return lines;
}

/** `umoci unpack` of `layout:tag` into `bundle`; returns the rootfs path. */
export async function umociUnpack(layoutDir: string, tag: string, bundle: string): Promise<string> {
  await run('umoci', ['unpack', '--image', `${layoutDir}:${tag}`, bundle]);
  return join(bundle, 'rootfs');
}

/** Polls `read` until `done` holds (bounded: a hung job fails the test, never the run). */
export async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${timeoutMs} ms; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export { sha256 };
