import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { OCI, digestOf, encodeDocument, type Descriptor, type Platform, type Pusher } from '../../src/oci/index.js';

/** A hand-made image: its blobs in push order (layers, config, manifest) and the root descriptor. */
export interface TestImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Descriptor[];
  readonly blobs: ReadonlyArray<readonly [Descriptor, Uint8Array]>;
}

export function blob(mediaType: string, bytes: Uint8Array): [Descriptor, Uint8Array] {
  return [{ mediaType, digest: digestOf(bytes), size: bytes.byteLength }, bytes];
}

/** A tar of regular files (fixed mtime, root owner), as bytes. */
export async function makeTar(files: Readonly<Record<string, string>>): Promise<Uint8Array> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const [name, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
    pack.entry({ name, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file' }, content);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** An image with one gzip layer per entry of `layers` (each a map of path → content). */
export async function makeImage(layers: ReadonlyArray<Readonly<Record<string, string>>>, platform: Platform = { os: 'linux', architecture: 'amd64' }): Promise<TestImage> {
  const tars = await Promise.all(layers.map(makeTar));
  const layerBlobs = tars.map((t) => blob(OCI.layerGzip, gzipSync(t, { level: 1 })));
  const config = blob(
    OCI.config,
    encodeDocument({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: tars.map((t) => digestOf(t)) },
      history: tars.map(() => ({ created_by: 'test' })),
    }),
  );
  const manifest = blob(
    OCI.manifest,
    encodeDocument({ schemaVersion: 2, mediaType: OCI.manifest, config: config[0], layers: layerBlobs.map(([d]) => d) }),
  );
  return {
    manifest: { ...manifest[0], platform },
    config: config[0],
    layers: layerBlobs.map(([d]) => d),
    blobs: [...layerBlobs, config, manifest],
  };
}

/** An index over `images`, each entry carrying its platform. */
export function makeIndex(images: readonly TestImage[]): [Descriptor, Uint8Array] {
  return blob(OCI.index, encodeDocument({ schemaVersion: 2, mediaType: OCI.index, manifests: images.map((i) => i.manifest) }));
}

/** Pushes an image's blobs children-first. */
export async function pushImage(store: Pusher, image: TestImage): Promise<void> {
  for (const [desc, bytes] of image.blobs) await store.push(desc, bytes);
}
