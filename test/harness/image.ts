import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';
import { DOCKER, MemoryStore, OCI, type Descriptor, type Digest, type Platform } from '../../src/oci/index.js';

/** A file of a test layer. */
export interface TestFile {
  readonly name: string;
  readonly content?: string | Buffer;
  readonly type?: 'file' | 'directory' | 'symlink';
  readonly linkname?: string;
  readonly mode?: number;
}

export interface TestLayer {
  readonly bytes: Buffer;
  readonly descriptor: Descriptor;
  readonly diffId: Digest;
}

export interface TestImage {
  readonly manifest: Buffer;
  readonly config: Buffer;
  readonly layers: readonly TestLayer[];
  readonly descriptor: Descriptor;
  readonly configDescriptor: Descriptor;
  /** Every blob and manifest of the image, by digest. */
  readonly blobs: ReadonlyMap<string, Buffer>;
  readonly platform: Platform;
}

function sha256(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

/** A deterministic tar (fixed mtime, uid/gid 0), in the order given. */
export async function makeTar(files: readonly TestFile[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: unknown) => {
    chunks.push(c as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    tar.on('end', resolve);
    tar.on('error', reject);
  });
  const mtime = new Date(0);
  for (const file of files) {
    const type = file.type ?? 'file';
    if (type === 'directory') {
      tar.entry({ name: file.name, type: 'directory', mode: file.mode ?? 0o755, mtime, uid: 0, gid: 0 });
    } else if (type === 'symlink') {
      tar.entry({ name: file.name, type: 'symlink', linkname: file.linkname ?? '', mode: file.mode ?? 0o777, mtime, uid: 0, gid: 0 });
    } else {
      const content = typeof file.content === 'string' ? Buffer.from(file.content) : (file.content ?? Buffer.alloc(0));
      await new Promise<void>((resolve, reject) =>
        tar.entry({ name: file.name, mode: file.mode ?? 0o644, mtime, uid: 0, gid: 0, size: content.length }, content, (err) => (err ? reject(err) : resolve())),
      );
    }
  }
  tar.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A gzip-compressed layer with its descriptor and diffID. */
export async function makeLayer(files: readonly TestFile[], family: 'oci' | 'docker' = 'oci'): Promise<TestLayer> {
  const tar = await makeTar(files);
  const bytes = gzipSync(tar, { level: 6 });
  return {
    bytes,
    diffId: sha256(tar),
    descriptor: { mediaType: family === 'docker' ? DOCKER.layerGzip : OCI.layerGzip, digest: sha256(bytes), size: bytes.length },
  };
}

export interface MakeImageOptions {
  /** Layers to build; default one layer with a few files. */
  readonly layers?: readonly (readonly TestFile[])[];
  readonly platform?: Platform;
  readonly family?: 'oci' | 'docker';
  /** Made unique so two images never share a config digest. */
  readonly label?: string;
}

/** Builds a small, valid image in memory: gzip layers, a config with matching diffIDs, a manifest. */
export async function makeImage(options: MakeImageOptions = {}): Promise<TestImage> {
  const family = options.family ?? 'oci';
  const platform = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const label = options.label ?? randomBytes(6).toString('hex');
  const specs = options.layers ?? [
    [
      { name: 'etc/', type: 'directory' as const },
      { name: 'etc/hello.txt', content: `hello from ${label}\n` },
      { name: 'bin/', type: 'directory' as const },
      { name: 'bin/tool', content: randomBytes(2048), mode: 0o755 },
    ],
  ];
  const layers = await Promise.all(specs.map((files) => makeLayer(files, family)));
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      created: '1970-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: { 'test.label': label } },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((_, i) => ({ created: '1970-01-01T00:00:00Z', created_by: `test layer ${i}` })),
    }),
  );
  const configDescriptor: Descriptor = { mediaType: family === 'docker' ? DOCKER.config : OCI.config, digest: sha256(config), size: config.length };
  const mediaType = family === 'docker' ? DOCKER.manifest : OCI.manifest;
  const manifest = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType, config: configDescriptor, layers: layers.map((l) => l.descriptor) }),
  );
  const blobs = new Map<string, Buffer>([[sha256(manifest), manifest], [configDescriptor.digest, config], ...layers.map((l) => [l.descriptor.digest, l.bytes] as [string, Buffer])]);
  return {
    manifest,
    config,
    layers,
    descriptor: { mediaType, digest: sha256(manifest), size: manifest.length },
    configDescriptor,
    blobs,
    platform,
  };
}

export interface TestIndex {
  readonly bytes: Buffer;
  readonly descriptor: Descriptor;
  readonly images: readonly TestImage[];
}

/** An index over several images, each entry with its platform. */
export function makeIndex(images: readonly TestImage[], family: 'oci' | 'docker' = 'oci'): TestIndex {
  const mediaType = family === 'docker' ? DOCKER.manifestList : OCI.index;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: images.map((image) => ({ ...image.descriptor, platform: image.platform })),
    }),
  );
  return { bytes, descriptor: { mediaType, digest: sha256(bytes), size: bytes.length }, images };
}

/** A MemoryStore holding every blob of the images (and the index, when given). */
export async function storeOf(images: readonly TestImage[], index?: TestIndex): Promise<MemoryStore> {
  const store = new MemoryStore();
  for (const image of images) {
    for (const layer of image.layers) await store.push(layer.descriptor, layer.bytes);
    await store.push(image.configDescriptor, image.config);
    await store.push(image.descriptor, image.manifest);
  }
  if (index) await store.push(index.descriptor, index.bytes);
  return store;
}

/** Reads a stream fully. */
export async function readStream(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** The diffID of a gzip layer: sha256 of the uncompressed tar. */
export function diffIdOf(gzipped: Buffer): Digest {
  return sha256(gunzipSync(gzipped));
}

export { sha256 };
