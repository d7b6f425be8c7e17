import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyGraph, DigestMismatchError, MemoryStore, OCI, parseImageConfig, parseReference, type Descriptor } from '../../src/oci/index.js';
import {
  anonymousCredentials,
  PlatformNotFoundError,
  RegistryClient,
  RegistryClientPool,
  resolveReference,
  type RegistryEvent,
} from '../../src/registry/index.js';
import {
  diffIdOf,
  makeImage,
  makeIndex,
  readStream,
  sha256,
  startFaultProxy,
  startRegistry,
  storeOf,
  type FaultProxy,
  type TestImage,
  type TestRegistry,
} from '../harness/index.js';

let registry: TestRegistry;
let observer: FaultProxy;

beforeAll(async () => {
  registry = await startRegistry();
  // An empty plan: the proxy only records what the client sends.
  observer = await startFaultProxy(registry.url);
});

afterAll(async () => {
  await observer?.stop();
  await registry?.stop();
});

function blobDescriptor(bytes: Buffer): Descriptor {
  return { mediaType: OCI.layerGzip, digest: sha256(bytes), size: bytes.length };
}

/** Fetches every blob of `image` from the repository and compares bytes, digests and diffIDs. */
async function expectImageIn(repo: ReturnType<RegistryClient['repository']>, image: TestImage): Promise<void> {
  const manifest = await readStream(await repo.fetch(image.descriptor));
  expect(sha256(manifest)).toBe(image.descriptor.digest);
  const config = await readStream(await repo.fetch(image.configDescriptor));
  expect(config.equals(image.config)).toBe(true);
  const parsed = parseImageConfig(config, image.configDescriptor);
  for (const [i, layer] of image.layers.entries()) {
    const bytes = await readStream(await repo.fetch(layer.descriptor));
    expect(sha256(bytes)).toBe(layer.descriptor.digest);
    expect(diffIdOf(bytes)).toBe(parsed.value.rootfs.diff_ids[i]);
  }
}

describe('push and pull against a real registry', () => {
  it('round-trips an image through copyGraph, verifying every digest', async () => {
    const events: RegistryEvent[] = [];
    const client = new RegistryClient(registry.host, { credentials: anonymousCredentials, onEvent: (e) => events.push(e) });
    try {
      const image = await makeImage({
        layers: [
          [{ name: 'a.txt', content: 'a' }],
          [{ name: 'b/', type: 'directory' }, { name: 'b/c.bin', content: randomBytes(100_000) }],
        ],
      });
      const repo = client.repository('roundtrip/app');
      const pushed = await copyGraph(await storeOf([image]), repo, image.descriptor);
      expect(pushed).toMatchObject({ copied: 4, skipped: 0 });
      await repo.tag(image.descriptor, 'v1');

      expect(await repo.resolve('v1')).toEqual(image.descriptor);
      expect(await repo.resolve(image.descriptor.digest)).toEqual(image.descriptor);
      await expectImageIn(repo, image);

      const pulled = new MemoryStore();
      expect(await copyGraph(repo, pulled, await repo.resolve('v1'))).toMatchObject({ copied: 4 });
      for (const [digest, bytes] of image.blobs) {
        expect((await readStream(await pulled.fetch({ mediaType: 'application/octet-stream', digest: digest as Descriptor['digest'], size: bytes.length }))).equals(bytes)).toBe(true);
      }

      // A second push skips everything: the root manifest exists.
      expect(await copyGraph(await storeOf([image]), repo, image.descriptor)).toMatchObject({ copied: 0, skipped: 1 });

      expect(events.filter((e) => e.type === 'manifest-pushed').map((e) => (e as { tag?: string }).tag)).toEqual([undefined, 'v1']);
      expect(events.some((e) => e.type === 'blob-done' && e.direction === 'pull')).toBe(true);
      expect(events.some((e) => e.type === 'blob-progress' && e.direction === 'push')).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('answers existence of blobs, manifests and tags', async () => {
    const client = new RegistryClient(registry.host, { credentials: anonymousCredentials });
    try {
      const image = await makeImage();
      const repo = client.repository('exists/app');
      expect(await repo.exists(image.descriptor)).toBe(false);
      expect(await repo.exists(image.layers[0]!.descriptor)).toBe(false);
      await copyGraph(await storeOf([image]), repo, image.descriptor);
      expect(await repo.exists(image.descriptor)).toBe(true);
      expect(await repo.exists(image.layers[0]!.descriptor)).toBe(true);
      expect(await repo.referenceExists('nope')).toBe(false);
      await repo.tag(image.descriptor, 'yes');
      expect(await repo.referenceExists('yes')).toBe(true);
      await expect(repo.resolve('nope')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN', status: 404 });
      await expect(repo.fetchManifest('nope')).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
    } finally {
      await client.close();
    }
  });

  it('lists tags across pages', async () => {
    const client = new RegistryClient(registry.host, { credentials: anonymousCredentials });
    try {
      const image = await makeImage();
      const repo = client.repository('tags/app');
      await copyGraph(await storeOf([image]), repo, image.descriptor);
      const names = ['a', 'b', 'c', 'd', 'e'];
      for (const tag of names) await repo.tag(image.descriptor, tag);
      expect((await repo.tags({ pageSize: 2 })).sort()).toEqual(names);
      expect((await repo.tags()).sort()).toEqual(names);
      await expect(client.repository('tags/none').tags()).rejects.toMatchObject({ code: 'NAME_UNKNOWN' });
    } finally {
      await client.close();
    }
  });

  it('selects the right child of a multi-platform index', async () => {
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
      { os: 'linux', architecture: 'arm', variant: 'v7' },
      { os: 'linux', architecture: 'arm', variant: 'v6' },
    ];
    const images = await Promise.all(platforms.map((platform) => makeImage({ platform })));
    for (const family of ['oci', 'docker'] as const) {
      const index = makeIndex(images, family);
      const pool = new RegistryClientPool({ credentials: anonymousCredentials });
      try {
        const repo = pool.repository({ registry: registry.host, repository: `multi/${family}` });
        await copyGraph(await storeOf(images, index), repo, index.descriptor);
        await repo.tag(index.descriptor, 'latest');
        const ref = parseReference(`${registry.host}/multi/${family}:latest`);
        const pick = async (platform?: { os: string; architecture: string; variant?: string }): Promise<string> =>
          (await resolveReference(ref, { registries: pool, ...(platform === undefined ? {} : { platform }) })).descriptor.digest;
        expect(await pick()).toBe(images[0]!.descriptor.digest);
        expect(await pick({ os: 'linux', architecture: 'arm64' })).toBe(images[1]!.descriptor.digest);
        expect(await pick({ os: 'linux', architecture: 'arm' })).toBe(images[2]!.descriptor.digest);
        expect(await pick({ os: 'linux', architecture: 'arm', variant: 'v6' })).toBe(images[3]!.descriptor.digest);
        const resolved = await resolveReference(ref, { registries: pool, platform: { os: 'linux', architecture: 'arm64' } });
        expect(resolved.index?.descriptor.digest).toBe(index.descriptor.digest);
        expect(resolved.pinned).toEqual({ registry: registry.host, repository: `multi/${family}`, digest: images[1]!.descriptor.digest });
        expect(resolved.manifest.value.config.digest).toBe(images[1]!.configDescriptor.digest);
        expect((await resolveReference(ref, { registries: pool, selection: 'gitpod' })).descriptor.digest).toBe(images[0]!.descriptor.digest);
        await expect(resolveReference(ref, { registries: pool, platform: { os: 'linux', architecture: 's390x' } })).rejects.toBeInstanceOf(PlatformNotFoundError);
        // A single-image reference resolves to itself whatever the platform.
        const single = await resolveReference(`${registry.host}/multi/${family}@${images[2]!.descriptor.digest}`, { registries: pool });
        expect(single.descriptor.digest).toBe(images[2]!.descriptor.digest);
        expect(single.index).toBeUndefined();
      } finally {
        await pool.close();
      }
    }
  });

  it('uploads large blobs in every mode and reads them back verified', async () => {
    const data = randomBytes(1_200_000);
    const desc = blobDescriptor(data);
    const modes = [
      { name: 'chunked one-shot', options: { monolithicUploadLimit: 64 * 1024, uploadChunkSize: 256 * 1024 }, content: () => Readable.from([data.subarray(0, 500_000), data.subarray(500_000)]) },
      { name: 'streamed one-shot', options: { monolithicUploadLimit: 64 * 1024, uploadChunkSize: 0 }, content: () => Readable.from([data]) },
      { name: 'opener', options: { monolithicUploadLimit: 64 * 1024 }, content: () => () => Readable.from([data]) },
      { name: 'monolithic one-shot', options: { monolithicUploadLimit: 4 * 1024 * 1024 }, content: () => Readable.from([data]) },
    ];
    for (const [i, mode] of modes.entries()) {
      const client = new RegistryClient(registry.host, { credentials: anonymousCredentials, ...mode.options });
      try {
        const repo = client.repository(`large/mode${i}`);
        expect(await repo.pushBlob(desc, mode.content()), mode.name).toBe('uploaded');
        expect((await readStream(await repo.fetch(desc))).equals(data), mode.name).toBe(true);
        // Pushing again is a no-op for large blobs (HEAD first).
        if (mode.options.monolithicUploadLimit < data.length) expect(await repo.pushBlob(desc, mode.content()), mode.name).toBe('skipped');
      } finally {
        await client.close();
      }
    }
  });

  it('refuses content that does not match its descriptor, leaving nothing behind', async () => {
    const data = randomBytes(300_000);
    const wrong = { ...blobDescriptor(data), digest: sha256(Buffer.from('something else')) };
    for (const options of [{}, { monolithicUploadLimit: 1024, uploadChunkSize: 64 * 1024 }, { monolithicUploadLimit: 1024, uploadChunkSize: 0 }]) {
      const client = new RegistryClient(registry.host, { credentials: anonymousCredentials, ...options });
      try {
        const repo = client.repository('mismatch/app');
        await expect(repo.pushBlob(wrong, Readable.from([data]))).rejects.toBeInstanceOf(DigestMismatchError);
        expect(await repo.exists(wrong)).toBe(false);
        expect(await repo.exists(blobDescriptor(data))).toBe(false);
        // Too short and too long for the descriptor.
        await expect(repo.pushBlob({ ...blobDescriptor(data), size: data.length + 10 }, Readable.from([data]))).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
        await expect(repo.pushBlob({ ...blobDescriptor(data), size: data.length - 10 }, Readable.from([data]))).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
      } finally {
        await client.close();
      }
    }
  });

  it('mounts blobs across repositories, and uses the session of a declined mount', async () => {
    const events: RegistryEvent[] = [];
    const client = new RegistryClient(observer.host, { credentials: anonymousCredentials, onEvent: (e) => events.push(e) });
    try {
      const data = randomBytes(5000);
      const desc = blobDescriptor(data);
      const source = client.repository('mount/source');
      const target = client.repository('mount/target');
      await source.pushBlob(desc, data);
      expect(await target.mount(desc, 'mount/source')).toBe(true);
      expect(await target.exists(desc)).toBe(true);
      expect(events).toContainEqual(expect.objectContaining({ type: 'blob-mounted', from: 'mount/source', repository: 'mount/target' }));

      const other = randomBytes(5000);
      const otherDesc = blobDescriptor(other);
      expect(await target.mount(otherDesc, 'mount/source')).toBe(false);
      const before = observer.log.filter((e) => e.method === 'POST').length;
      expect(await target.pushBlob(otherDesc, other)).toBe('uploaded');
      expect(observer.log.filter((e) => e.method === 'POST').length).toBe(before);
      expect(await target.exists(otherDesc)).toBe(true);

      // copyGraph with mountFrom mounts instead of uploading.
      const image = await makeImage();
      await copyGraph(await storeOf([image]), source, image.descriptor);
      const result = await copyGraph(source, client.repository('mount/third'), image.descriptor, { mountFrom: () => 'mount/source' });
      expect(result.mounted).toBe(image.layers.length + 1);
    } finally {
      await client.close();
    }
  });

  it('resumes a blob download with Range after a reset mid-body', async () => {
    const client = new RegistryClient(observer.host, { credentials: anonymousCredentials, retryPolicy: { name: 'test', maxAttempts: 3, backoff: 'linear', initialDelayMs: 10, maxDelayMs: 10, jitter: false, requestTimeoutMs: 10_000, maxRetryAfterMs: 0 } });
    try {
      const data = randomBytes(2_000_000);
      const desc = blobDescriptor(data);
      const repo = client.repository('resume/app');
      await repo.pushBlob(desc, data);
      observer.setPlan([{ method: 'GET', path: /\/blobs\/sha256:/, action: { kind: 'reset-response', afterBytes: 700_000 } }]);
      const bytes = await readStream(await repo.fetch(desc));
      expect(bytes.equals(data)).toBe(true);
      const gets = observer.log.filter((e) => e.method === 'GET' && e.path.includes(desc.digest));
      expect(gets.length).toBe(2);
      expect(gets[0]!.range).toBeUndefined();
      expect(gets[1]!.range).toMatch(/^bytes=\d+-$/);
      expect(Number(/\d+/.exec(gets[1]!.range!)![0])).toBeGreaterThan(0);
    } finally {
      observer.setPlan([]);
      await client.close();
    }
  });
});
