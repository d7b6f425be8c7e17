import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImageValidationError, buildLayer, directorySource, validateImage, type BuiltLayer } from '../../src/layers/index.js';
import { DOCKER, MemoryStore, OCI, digestOf, encodeDocument, type Descriptor, type Fetcher, type OperationOptions } from '../../src/oci/index.js';
import { Collector, TempDirs } from './helpers.js';

const dirs = new TempDirs();
afterAll(() => dirs.cleanup());

interface Layer extends BuiltLayer {
  readonly bytes: Buffer;
}

let gzipLayer: Layer;
let zstdLayer: Layer;

beforeAll(async () => {
  const root = await dirs.make();
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc/os-release'), 'ID=test\n');
  await writeFile(join(root, 'hello'), 'hello\n'.repeat(1000));
  const make = async (compression: 'gzip' | 'zstd', family: 'oci' | 'docker' = 'oci'): Promise<Layer> => {
    const out = new Collector();
    const built = await buildLayer(directorySource(root), out, { compression, mediaTypeFamily: family });
    return { ...built, bytes: out.bytes };
  };
  gzipLayer = await make('gzip');
  zstdLayer = await make('zstd');
});

function blob(mediaType: string, bytes: Uint8Array): [Descriptor, Uint8Array] {
  return [{ mediaType, digest: digestOf(bytes), size: bytes.byteLength }, bytes];
}

interface ImageSpec {
  readonly family?: 'oci' | 'docker';
  readonly layers?: readonly Layer[];
  readonly editConfig?: (config: Record<string, unknown>) => void;
  readonly editManifest?: (manifest: { config: Descriptor; layers: Descriptor[]; [key: string]: unknown }) => void;
  readonly skip?: 'config' | 'layer';
}

/** Assembles and stores an image (its layers built by buildLayer), applying the spec's damage. */
async function storeImage(store: MemoryStore, spec: ImageSpec = {}): Promise<Descriptor> {
  const docker = spec.family === 'docker';
  const layers = spec.layers ?? [gzipLayer, zstdLayer];
  const config: Record<string, unknown> = {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: [...layers.map(() => ({ created_by: 'COPY . /' })), { created_by: 'CMD ["/bin/sh"]', empty_layer: true }],
  };
  spec.editConfig?.(config);
  const [configDesc, configBytes] = blob(docker ? DOCKER.config : OCI.config, encodeDocument(config));
  const manifest = {
    schemaVersion: 2,
    mediaType: docker ? DOCKER.manifest : OCI.manifest,
    config: configDesc,
    layers: layers.map((l): Descriptor => ({ mediaType: docker ? DOCKER.layerGzip : l.mediaType, digest: l.digest, size: l.size })),
  };
  spec.editManifest?.(manifest);
  for (const [i, layer] of layers.entries()) if (!(spec.skip === 'layer' && i === 0)) await store.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, layer.bytes);
  if (spec.skip !== 'config') await store.push(configDesc, configBytes);
  const [desc, bytes] = blob(manifest.mediaType, encodeDocument(manifest));
  await store.push(desc, bytes);
  return desc;
}

async function problemsOf(store: Fetcher, desc: Descriptor): Promise<string[]> {
  try {
    await validateImage(store, desc);
  } catch (err) {
    expect(err).toBeInstanceOf(ImageValidationError);
    expect((err as ImageValidationError).code).toBe('INVALID_IMAGE');
    return (err as ImageValidationError).problems.map((p) => p.kind);
  }
  return [];
}

/** A store that serves other bytes than it was given for one digest (a corrupt disk, a bad proxy). */
class LyingStore implements Fetcher {
  constructor(
    readonly inner: MemoryStore,
    readonly digest: string,
    readonly bytes: Uint8Array,
  ) {}
  async fetch(desc: Descriptor, options?: OperationOptions): Promise<Readable> {
    if (desc.digest === this.digest) return Readable.from([this.bytes]);
    return this.inner.fetch(desc, options);
  }
}

describe('validateImage', () => {
  it('accepts a well-formed OCI image with gzip and zstd layers', async () => {
    const store = new MemoryStore();
    const desc = await storeImage(store);
    expect(await validateImage(store, desc)).toEqual({ manifests: 1, indexes: 0, layers: 2 });
  });

  it('accepts a Docker schema 2 image and an index of platforms with an attestation', async () => {
    const store = new MemoryStore();
    const docker = await storeImage(store, { family: 'docker', layers: [gzipLayer] });
    expect(await validateImage(store, docker)).toMatchObject({ manifests: 1 });

    const amd64 = await storeImage(store);
    const arm64 = await storeImage(store, { editConfig: (c) => Object.assign(c, { architecture: 'arm64', variant: 'v8' }), layers: [gzipLayer] });
    const [statement] = blob('application/vnd.in-toto+json', encodeDocument({ _type: 'https://in-toto.io/Statement/v0.1' }));
    await store.push(statement, encodeDocument({ _type: 'https://in-toto.io/Statement/v0.1' }));
    const [emptyConfig, emptyBytes] = blob(OCI.config, encodeDocument({ architecture: 'unknown', os: 'unknown', rootfs: { type: 'layers', diff_ids: [] } }));
    await store.push(emptyConfig, emptyBytes);
    const [attestation, attestationBytes] = blob(OCI.manifest, encodeDocument({ schemaVersion: 2, mediaType: OCI.manifest, config: emptyConfig, layers: [statement] }));
    await store.push(attestation, attestationBytes);
    const [index, indexBytes] = blob(
      OCI.index,
      encodeDocument({
        schemaVersion: 2,
        mediaType: OCI.index,
        manifests: [
          { ...amd64, platform: { os: 'linux', architecture: 'amd64' } },
          { ...arm64, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
          { ...attestation, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd64.digest } },
        ],
      }),
    );
    await store.push(index, indexBytes);
    expect(await validateImage(store, index)).toEqual({ manifests: 3, indexes: 1, layers: 2 });
  });

  it('accepts a foreign layer that the store does not hold, as registries do not', async () => {
    const store = new MemoryStore();
    const foreign: Descriptor = { mediaType: DOCKER.layerForeignGzip, digest: digestOf('foreign blob'), size: 12, urls: ['https://example.invalid/layer'] };
    const desc = await storeImage(store, {
      family: 'docker',
      layers: [gzipLayer],
      editConfig: (c) => {
        (c.rootfs as { diff_ids: string[] }).diff_ids.unshift(digestOf('foreign tar'));
        (c.history as unknown[]).unshift({ created_by: 'foreign base' });
      },
      editManifest: (m) => m.layers.unshift(foreign),
    });
    expect(await validateImage(store, desc)).toMatchObject({ manifests: 1 });
  });

  it('catches a layer whose bytes do not hash to its digest, even from a store that does not verify', async () => {
    const store = new MemoryStore();
    const desc = await storeImage(store);
    // The gzip header's mtime field: the layer still decompresses to the same tar.
    const otherMtime = Buffer.from(gzipLayer.bytes);
    otherMtime[4] = 1;
    expect(await problemsOf(new LyingStore(store, gzipLayer.digest, otherMtime), desc)).toEqual(['layer-digest']);
    // Zero padding after the gzip member: still the same tar, but not the same size.
    expect(await problemsOf(new LyingStore(store, gzipLayer.digest, Buffer.concat([gzipLayer.bytes, Buffer.alloc(4)])), desc)).toEqual(['layer-size']);
    // The gzip CRC: the decompressor notices.
    const badCrc = Buffer.from(gzipLayer.bytes);
    badCrc[badCrc.byteLength - 8]! ^= 0xff;
    expect(await problemsOf(new LyingStore(store, gzipLayer.digest, badCrc), desc)).toEqual(['layer-compression']);
    const truncated = zstdLayer.bytes.subarray(0, zstdLayer.bytes.byteLength - 10);
    expect(await problemsOf(new LyingStore(store, zstdLayer.digest, truncated), desc)).toEqual(['layer-compression']);
  });

  it('catches a wrong diffID, a missing config or layer, and count mismatches', async () => {
    const store = new MemoryStore();
    const wrongDiff = await storeImage(store, { editConfig: (c) => ((c.rootfs as { diff_ids: string[] }).diff_ids[1] = gzipLayer.diffId.replace(/.$/, '0')) });
    expect(await problemsOf(store, wrongDiff)).toEqual(['diff-id']);
    const swapped = await storeImage(store, { layers: [gzipLayer, zstdLayer], editConfig: (c) => ((c.rootfs as { diff_ids: string[] }).diff_ids = [digestOf('x'), digestOf('y')]) });
    expect(await problemsOf(store, swapped)).toEqual(['diff-id', 'diff-id']);
    expect(await problemsOf(new MemoryStore(), wrongDiff)).toEqual(['manifest-missing']);

    const noConfigStore = new MemoryStore();
    expect(await problemsOf(noConfigStore, await storeImage(noConfigStore, { skip: 'config' }))).toEqual(['config-missing']);
    const noLayerStore = new MemoryStore();
    expect(await problemsOf(noLayerStore, await storeImage(noLayerStore, { skip: 'layer', layers: [gzipLayer] }))).toEqual(['layer-missing']);

    const fewer = await storeImage(store, { editConfig: (c) => (c.rootfs as { diff_ids: string[] }).diff_ids.pop() });
    expect(await problemsOf(store, fewer)).toEqual(['layer-count']);
    const history = await storeImage(store, { editConfig: (c) => (c.history as unknown[]).splice(0, 1) });
    expect(await problemsOf(store, history)).toEqual(['history-count']);
  });

  it('catches media type problems: unknown layer type, wrong family, config type', async () => {
    const store = new MemoryStore();
    const unknown = await storeImage(store, { editManifest: (m) => (m.layers[0] = { ...m.layers[0]!, mediaType: 'application/x-tar' }) });
    expect(await problemsOf(store, unknown)).toContain('layer-media-type');
    const mixed = await storeImage(store, { layers: [gzipLayer], editManifest: (m) => (m.layers[0] = { ...m.layers[0]!, mediaType: DOCKER.layerGzip }) });
    expect(await problemsOf(store, mixed)).toEqual(['media-type-family']);
    const dockerConfig = await storeImage(store, { editManifest: (m) => (m.config = { ...m.config, mediaType: DOCKER.config }) });
    expect(await problemsOf(store, dockerConfig)).toEqual(['config-media-type']);
    const notGzip = await storeImage(store, { layers: [zstdLayer], editManifest: (m) => (m.layers[0] = { ...m.layers[0]!, mediaType: OCI.layerGzip }) });
    expect(await problemsOf(store, notGzip)).toEqual(['layer-compression']);
  });

  it('catches a platform that disagrees with the index and reports every problem', async () => {
    const store = new MemoryStore();
    const image = await storeImage(store, { editConfig: (c) => ((c.rootfs as { diff_ids: string[] }).diff_ids = []) });
    const [index, bytes] = blob(OCI.index, encodeDocument({ schemaVersion: 2, mediaType: OCI.index, manifests: [{ ...image, platform: { os: 'linux', architecture: 'arm64' } }] }));
    await store.push(index, bytes);
    const err = (await validateImage(store, index).catch((e: unknown) => e)) as ImageValidationError;
    expect(err).toBeInstanceOf(ImageValidationError);
    expect(err.problems.map((p) => p.kind)).toEqual(['layer-count', 'platform']);
    expect(err.message).toMatch(/^invalid image: layer-count: the manifest has 2 layers but the config lists 0 diffIDs \(and 1 more problem\)$/);
  });
});
