import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import {
  Digester,
  DigestMismatchError,
  InvalidDocumentError,
  MAX_DOCUMENT_SIZE,
  MemoryStore,
  OCI,
  OciLayout,
  TooLargeError,
  copyGraph,
  digestOf,
  encodeDocument,
  fetchAll,
  isBlobOpener,
  isManifestMediaType,
  openReadable,
  fetchManifest,
  manifestSuccessors,
  readAll,
  type BlobContent,
  type CopyEvent,
  type Descriptor,
  type Mounter,
  type OperationOptions,
  type Storage,
} from '../../src/oci/index.js';
import { blob, makeImage, makeIndex, pushImage, type TestImage } from './fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-copy-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Log = Array<{ op: 'fetch' | 'push-start' | 'push-end' | 'exists'; digest: string }>;

/** A store that records what is done to it and how many operations overlap. */
class Recording implements Storage {
  readonly log: Log = [];
  active = 0;
  maxActive = 0;
  constructor(readonly inner: Storage, readonly delayMs = 0) {}

  async #track<T>(fn: () => Promise<T>): Promise<T> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
      return await fn();
    } finally {
      this.active--;
    }
  }

  fetch(desc: Descriptor, options?: OperationOptions): Promise<Readable> {
    this.log.push({ op: 'fetch', digest: desc.digest });
    return this.#track(() => this.inner.fetch(desc, options));
  }
  exists(desc: Descriptor, options?: OperationOptions): Promise<boolean> {
    this.log.push({ op: 'exists', digest: desc.digest });
    return this.#track(() => this.inner.exists(desc, options));
  }
  push(desc: Descriptor, content: BlobContent, options?: OperationOptions): Promise<void> {
    this.log.push({ op: 'push-start', digest: desc.digest });
    return this.#track(async () => {
      await this.inner.push(desc, content, options);
      this.log.push({ op: 'push-end', digest: desc.digest });
    });
  }
  pushes(): string[] {
    return this.log.filter((e) => e.op === 'push-end').map((e) => e.digest);
  }
}

/** Asserts that every manifest's push started after each of its children's push ended. */
function expectChildrenFirst(log: Log, images: readonly TestImage[], index?: Descriptor): void {
  const at = (op: string, digest: string): number => log.findIndex((e) => e.op === op && e.digest === digest);
  for (const image of images) {
    const parentStart = at('push-start', image.manifest.digest);
    expect(parentStart).toBeGreaterThanOrEqual(0);
    for (const child of [image.config, ...image.layers]) {
      const childEnd = at('push-end', child.digest);
      expect(childEnd).toBeGreaterThanOrEqual(0);
      expect(childEnd).toBeLessThan(parentStart);
    }
  }
  if (index !== undefined) {
    const indexStart = at('push-start', index.digest);
    for (const image of images) expect(at('push-end', image.manifest.digest)).toBeLessThan(indexStart);
  }
}

/** Two images sharing their first layer, under one index, in a MemoryStore. */
async function twoImageSource(): Promise<{ src: MemoryStore; images: TestImage[]; index: Descriptor }> {
  const src = new MemoryStore();
  const shared = { 'etc/os-release': 'ID=test' };
  const amd = await makeImage([shared, { 'bin/app': 'amd64' }], { os: 'linux', architecture: 'amd64' });
  const arm = await makeImage([shared, { 'bin/app': 'arm64' }], { os: 'linux', architecture: 'arm64' });
  await pushImage(src, amd);
  await pushImage(src, arm);
  const [index, bytes] = makeIndex([amd, arm]);
  await src.push(index, bytes);
  return { src, images: [amd, arm], index };
}

describe('copyGraph', () => {
  it('copies an index into a layout children-first, each digest once', async () => {
    const { src, images, index } = await twoImageSource();
    const layout = await OciLayout.open(join(dir, 'out'), { create: true });
    const dst = new Recording(layout);
    const events: CopyEvent[] = [];
    const result = await copyGraph(src, dst, index, { onEvent: (e) => events.push(e) });

    expectChildrenFirst(dst.log, images, index);
    // 2 manifests + 2 configs + 3 distinct layers + the index.
    expect(dst.pushes()).toHaveLength(8);
    expect(new Set(dst.pushes()).size).toBe(8);
    expect(result).toMatchObject({ copied: 8, skipped: 0, mounted: 0 });
    expect(result.bytes).toBe([index, ...images.flatMap((i) => [i.manifest, i.config, ...i.layers])].filter((d, i, all) => all.findIndex((o) => o.digest === d.digest) === i).reduce((n, d) => n + d.size, 0));
    expect(events.filter((e) => e.type === 'copied')).toHaveLength(8);
    expect(events.filter((e) => e.type === 'started')).toHaveLength(8);
    expect(events.find((e) => e.type === 'copied' && e.descriptor.digest === index.digest)?.bytes).toBe(index.size);

    await layout.tag(index, 'multi');
    const reopened = await OciLayout.open(join(dir, 'out'));
    expect((await reopened.resolve('multi')).digest).toBe(index.digest);
    for (const d of [index, ...images.flatMap((i) => [i.manifest, i.config, ...i.layers])]) {
      expect(digestOf(await readAll(await reopened.fetch(d), 1 << 24))).toBe(d.digest);
    }
  });

  it('fetches each manifest from the source once and pushes it from memory', async () => {
    const { src, images, index } = await twoImageSource();
    const recordingSrc = new Recording(src);
    await copyGraph(recordingSrc, new MemoryStore(), index);
    const fetched = recordingSrc.log.filter((e) => e.op === 'fetch').map((e) => e.digest);
    expect(fetched.filter((d) => d === index.digest)).toHaveLength(1);
    for (const image of images) expect(fetched.filter((d) => d === image.manifest.digest)).toHaveLength(1);
    // Every distinct blob fetched exactly once.
    expect(new Set(fetched).size).toBe(fetched.length);
  });

  it('skips what the destination already has, with its subtree', async () => {
    const { src, images, index } = await twoImageSource();
    const [amd, arm] = images as [TestImage, TestImage];
    const dstStore = new MemoryStore();
    await pushImage(dstStore, amd);
    const recordingSrc = new Recording(src);
    const dst = new Recording(dstStore);
    const events: CopyEvent[] = [];
    const result = await copyGraph(recordingSrc, dst, index, { onEvent: (e) => events.push(e) });

    expect(events.filter((e) => e.type === 'skipped').map((e) => e.descriptor.digest)).toContain(amd.manifest.digest);
    // Nothing below the existing manifest was even looked at.
    for (const d of [amd.config, ...amd.layers]) {
      expect(recordingSrc.log.some((e) => e.digest === d.digest && d.digest !== arm.layers[0]?.digest)).toBe(false);
    }
    // The shared layer exists already (pushed with amd) and is skipped, not copied.
    expect(dst.pushes().sort()).toStrictEqual([index.digest, arm.manifest.digest, arm.config.digest, arm.layers[1]!.digest].sort());
    expect(result).toMatchObject({ copied: 4, skipped: 2 });

    const again = await copyGraph(src, dst, index);
    expect(again).toMatchObject({ copied: 0, skipped: 1 });
  });

  it('copies a layout made of images back into memory', async () => {
    const layout = await OciLayout.open(join(dir, 'src'), { create: true });
    const image = await makeImage([{ a: '1' }, { b: '2' }]);
    await pushImage(layout, image);
    await layout.tag(image.manifest, 'v1');
    const dst = new Recording(new MemoryStore());
    await copyGraph(layout, dst, await layout.resolve('v1'));
    expectChildrenFirst(dst.log, [image]);
  });

  it('keeps to the concurrency bound', async () => {
    const src = new MemoryStore();
    const image = await makeImage(Array.from({ length: 12 }, (_, i) => ({ [`f${i}`]: String(i) })));
    await pushImage(src, image);
    const recordingSrc = new Recording(src, 5);
    const dst = new Recording(new MemoryStore(), 5);
    await copyGraph(recordingSrc, dst, image.manifest, { concurrency: 3 });
    // A transfer holds one slot for its fetch and its push, so the two sides together stay within it.
    expect(dst.maxActive).toBeLessThanOrEqual(3);
    expect(recordingSrc.maxActive).toBeLessThanOrEqual(3);
    expect(dst.maxActive).toBeGreaterThan(1);
    await expect(copyGraph(src, new MemoryStore(), image.manifest, { concurrency: 0 })).rejects.toThrow(RangeError);
  });

  it('stops on abort, and pushes nothing after it rejects', async () => {
    const src = new MemoryStore();
    const image = await makeImage(Array.from({ length: 10 }, (_, i) => ({ [`f${i}`]: String(i) })));
    await pushImage(src, image);
    const dst = new Recording(new MemoryStore(), 10);
    const controller = new AbortController();
    const copying = copyGraph(src, dst, image.manifest, { signal: controller.signal, concurrency: 2 });
    setTimeout(() => controller.abort(), 25);
    await expect(copying).rejects.toBeInstanceOf(AbortedError);
    const logged = dst.log.length;
    await new Promise((r) => setTimeout(r, 50));
    expect(dst.log.length).toBe(logged);
    expect(await dst.inner.exists(image.manifest)).toBe(false);

    const aborted = new AbortController();
    aborted.abort();
    await expect(copyGraph(src, dst, image.manifest, { signal: aborted.signal })).rejects.toBeInstanceOf(AbortedError);
  });

  it('fails with the source’s error and never pushes the parent of a failed child', async () => {
    const layout = await OciLayout.open(join(dir, 'src'), { create: true });
    const image = await makeImage([{ a: '1' }, { b: '2' }]);
    await pushImage(layout, image);
    const { writeFile } = await import('node:fs/promises');
    const victim = image.layers[1]!;
    await writeFile(layout.blobPath(victim.digest), Buffer.alloc(victim.size, 0x61));
    const dst = new MemoryStore();
    await expect(copyGraph(layout, dst, image.manifest)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await dst.exists(image.manifest)).toBe(false);
    expect(await dst.exists(victim)).toBe(false);
  });

  it('mounts blobs when the destination can, and falls back to a push', async () => {
    const { src, images, index } = await twoImageSource();
    const elsewhere = new MemoryStore();
    const [amd] = images as [TestImage];
    await pushImage(elsewhere, amd);
    const tried: Array<[string, string]> = [];
    class MountingStore extends MemoryStore implements Mounter {
      async mount(desc: Descriptor, from: string): Promise<boolean> {
        tried.push([desc.digest, from]);
        if (from !== 'library/other' || !(await elsewhere.exists(desc))) return false;
        await this.push(desc, await elsewhere.fetch(desc));
        return true;
      }
    }
    const dst = new MountingStore();
    const events: CopyEvent[] = [];
    const result = await copyGraph(src, dst, index, { mountFrom: () => ['library/nothing', 'library/other'], onEvent: (e) => events.push(e) });
    // amd64's config and two layers came by mount; the other blobs were pushed after two refusals.
    expect(result.mounted).toBe(3);
    expect(events.filter((e) => e.type === 'mounted').map((e) => e.descriptor.digest).sort()).toStrictEqual([amd.config.digest, ...amd.layers.map((l) => l.digest)].sort());
    // Manifests are never offered for mounting.
    expect(tried.some(([d]) => d === index.digest || d === amd.manifest.digest)).toBe(false);
    expect(await dst.exists(index)).toBe(true);
  });

  it('hands blobs over as openers a destination can call again, manifests as bytes', async () => {
    const { src, index } = await twoImageSource();
    const kinds = new Map<string, string>();
    /** Reads half of each blob's first stream, drops it, and stores from a second one. */
    class RetryingStore extends MemoryStore {
      override async push(desc: Descriptor, content: BlobContent, options?: OperationOptions): Promise<void> {
        kinds.set(desc.digest, isBlobOpener(content) ? 'opener' : content instanceof Uint8Array ? 'bytes' : 'stream');
        if (isBlobOpener(content)) {
          const first = await openReadable(content);
          for await (const chunk of first) {
            expect(chunk.byteLength).toBeGreaterThan(0);
            break; // leaving the loop destroys the stream: a transfer cut midway
          }
          expect(first.destroyed).toBe(true);
        }
        await super.push(desc, content, options);
      }
    }
    const dst = new RetryingStore();
    await copyGraph(src, dst, index);
    expect(await dst.exists(index)).toBe(true);
    for (const [digest, kind] of kinds) {
      const desc = (await src.resolve(digest)) as Descriptor;
      expect(kind).toBe(isManifestMediaType(desc.mediaType) ? 'bytes' : 'opener');
      expect(digestOf(await readAll(await dst.fetch(desc), 1 << 20))).toBe(digest);
    }
  });

  it('hashes each byte once between two layouts', async () => {
    const srcLayout = await OciLayout.open(join(dir, 'src'), { create: true });
    const image = await makeImage([{ a: 'x'.repeat(100_000) }, { b: 'y'.repeat(50_000) }]);
    await pushImage(srcLayout, image);
    const dst = await OciLayout.open(join(dir, 'dst'), { create: true });
    const update = vi.spyOn(Digester.prototype, 'update');
    try {
      await copyGraph(srcLayout, dst, image.manifest);
      const hashed = update.mock.calls.reduce((sum, [chunk]) => sum + chunk.byteLength, 0);
      // Every blob read once through the source's verifier, the manifest besides once more when
      // it is written from memory; before, every layer went through a second hash.
      expect(hashed).toBe(image.blobs.reduce((sum, [d]) => sum + d.size, 0) + image.manifest.size);
    } finally {
      update.mockRestore();
    }
    for (const [d] of image.blobs) expect(await dst.exists(d)).toBe(true);
  });

  it('takes a custom successor function', async () => {
    const { src, images, index } = await twoImageSource();
    const dst = new MemoryStore();
    // Copy only the arm64 image of the index (and the index itself), e.g. a platform filter.
    const arm = images[1]!;
    await copyGraph(src, dst, index, {
      findSuccessors: async (fetcher, desc, options) => {
        const children = await manifestSuccessors(fetcher, desc, options);
        return desc.digest === index.digest ? children.filter((c) => c.platform?.architecture === 'arm64') : children;
      },
    });
    expect(await dst.exists(arm.manifest)).toBe(true);
    expect(await dst.exists(images[0]!.manifest)).toBe(false);
  });
});

describe('manifest validation', () => {
  const config = blob(OCI.config, encodeDocument({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const valid = { schemaVersion: 2, mediaType: OCI.manifest, config: config[0], layers: [] };

  async function storeWith(document: unknown, mediaType: string = OCI.manifest): Promise<{ store: MemoryStore; desc: Descriptor }> {
    const store = new MemoryStore();
    await store.push(...config);
    const [desc, bytes] = blob(mediaType, encodeDocument(document));
    await store.push(desc, bytes);
    return { store, desc };
  }

  it.each([
    ['missing config', { schemaVersion: 2, mediaType: OCI.manifest, layers: [] }, /invalid manifest sha256:[0-9a-f]+: config: Required/],
    ['wrong schemaVersion', { ...valid, schemaVersion: 3 }, /schemaVersion: Invalid literal value, expected 2/],
    ['a bad digest in a layer', { ...valid, layers: [{ mediaType: OCI.layerGzip, digest: 'sha256:1234', size: 1 }] }, /layers\.0\.digest: must be a valid sha256 or sha512 digest/],
    ['a negative size', { ...valid, layers: [{ mediaType: OCI.layerGzip, digest: digestOf('x'), size: -1 }] }, /layers\.0\.size/],
    ['a declared media type that is not the descriptor’s', { ...valid, mediaType: OCI.index }, /declares mediaType "application\/vnd.oci.image.index.v1\+json" but its descriptor says "application\/vnd.oci.image.manifest.v1\+json"/],
  ])('refuses a manifest with %s', async (_name, document, reason) => {
    const { store, desc } = await storeWith(document);
    await expect(fetchManifest(store, desc)).rejects.toThrow(reason);
    await expect(fetchManifest(store, desc)).rejects.toBeInstanceOf(InvalidDocumentError);
    await expect(copyGraph(store, new MemoryStore(), desc)).rejects.toBeInstanceOf(InvalidDocumentError);
  });

  it('refuses an index that is really a manifest', async () => {
    const { store, desc } = await storeWith({ schemaVersion: 2, config: config[0], layers: [] }, OCI.index);
    await expect(fetchManifest(store, desc)).rejects.toThrow(/invalid index sha256:[0-9a-f]+: manifests: Required/);
  });

  it('accepts a manifest that omits mediaType (umoci) and reports what it references', async () => {
    const { store, desc } = await storeWith({ schemaVersion: 2, config: config[0], layers: [] });
    const parsed = await fetchManifest(store, desc);
    expect(parsed.kind).toBe('image');
    expect(await manifestSuccessors(store, desc)).toStrictEqual([config[0]]);
  });

  it('refuses oversized documents before reading them, and content that lies about its size', async () => {
    const store = new MemoryStore();
    const huge: Descriptor = { mediaType: OCI.manifest, digest: digestOf('x'), size: MAX_DOCUMENT_SIZE + 1 };
    await expect(fetchManifest(store, huge)).rejects.toBeInstanceOf(TooLargeError);
    await expect(copyGraph(store, new MemoryStore(), huge)).rejects.toBeInstanceOf(TooLargeError);
    const [desc, bytes] = blob(OCI.config, new Uint8Array(100));
    await store.push(desc, bytes);
    await expect(fetchAll(store, desc, { limit: 99 })).rejects.toThrow(/exceeds the limit of 99 bytes/);
    expect(await fetchAll(store, desc, { limit: 100 })).toHaveLength(100);
  });

  it('refuses a non-manifest media type as a manifest', async () => {
    const [desc] = blob(OCI.layerGzip, new Uint8Array(1));
    await expect(fetchManifest(new MemoryStore(), desc)).rejects.toThrow(/is not an image manifest or index/);
  });
});
