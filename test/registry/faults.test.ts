import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { copyGraph, Digester, DigestMismatchError, MemoryStore, OCI, OciLayout, type Descriptor } from '../../src/oci/index.js';
import {
  anonymousCredentials,
  gitpodRetryPolicy,
  isRegistryError,
  isTemporaryError,
  noRetryPolicy,
  RegistryClient,
  type RegistryEvent,
  type RetryPolicy,
} from '../../src/registry/index.js';
import {
  findDanglingReferences,
  makeImage,
  readStream,
  sha256,
  startFaultProxy,
  startRegistry,
  storeOf,
  tempDir,
  type FaultProxy,
  type FaultRule,
  type TestRegistry,
} from '../harness/index.js';

let registry: TestRegistry;
let proxy: FaultProxy;

/** Fast retries so the suite stays quick; the shape of the policy is what is under test. */
const quick: RetryPolicy = { name: 'test', maxAttempts: 5, backoff: 'exponential', initialDelayMs: 20, maxDelayMs: 100, jitter: true, requestTimeoutMs: 5_000, maxRetryAfterMs: 5_000 };

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
});

afterEach(async () => {
  proxy.setPlan([]);
  // The invariant after every scenario, successful or not.
  expect(await findDanglingReferences(registry.rootDirectory)).toEqual([]);
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});

function client(options: { retryPolicy?: RetryPolicy; monolithicUploadLimit?: number; uploadChunkSize?: number } = {}, events?: RegistryEvent[]): RegistryClient {
  return new RegistryClient(proxy.host, { credentials: anonymousCredentials, retryPolicy: quick, ...options, ...(events ? { onEvent: (e: RegistryEvent) => events.push(e) } : {}) });
}

function blob(size: number): { data: Buffer; desc: Descriptor } {
  const data = randomBytes(size);
  return { data, desc: { mediaType: OCI.layerGzip, digest: sha256(data), size } };
}

const UPLOAD = /\/blobs\/uploads\//;

describe('pushes through a faulty network', () => {
  it('retries 5xx and 429 (honouring Retry-After) and pushes a whole image', async () => {
    const events: RegistryEvent[] = [];
    const c = client({}, events);
    try {
      const image = await makeImage({ layers: [[{ name: 'a', content: randomBytes(3000) }], [{ name: 'b', content: randomBytes(3000) }]] });
      const plan: FaultRule[] = [
        { method: 'HEAD', path: /\/blobs\//, times: 2, action: { kind: 'status', status: 503 } },
        { method: 'POST', path: UPLOAD, times: 1, action: { kind: 'status', status: 500 } },
        { method: 'PUT', path: UPLOAD, times: 1, action: { kind: 'status', status: 502 } },
        { method: 'POST', path: UPLOAD, skip: 1, times: 1, action: { kind: 'status', status: 429, headers: { 'retry-after': '1' } } },
        { method: 'PUT', path: /\/manifests\//, times: 1, action: { kind: 'status', status: 503 } },
      ];
      proxy.setPlan(plan);
      const started = Date.now();
      const repo = c.repository('faults/image');
      await copyGraph(await storeOf([image]), repo, image.descriptor);
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(proxy.applied()).toBe(6);
      const retries = events.filter((e) => e.type === 'retry');
      expect(retries).toHaveLength(6);
      expect(retries.map((e) => (e as { cause: { code: string } }).cause.code)).toContain('TOOMANYREQUESTS');
      expect(retries.find((e) => (e as { cause: { code: string } }).cause.code === 'TOOMANYREQUESTS')).toMatchObject({ delayMs: expect.any(Number) });
      expect((retries.find((e) => (e as { cause: { code: string } }).cause.code === 'TOOMANYREQUESTS') as { delayMs: number }).delayMs).toBeGreaterThanOrEqual(1000);
      proxy.setPlan([]);
      const pulled = new MemoryStore();
      await copyGraph(repo, pulled, image.descriptor);
      expect(await pulled.exists(image.layers[1]!.descriptor)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('restarts a monolithic upload from its POST after a connection reset mid-body', async () => {
    const c = client();
    try {
      const { data, desc } = blob(200_000);
      proxy.setPlan([{ method: 'PUT', path: UPLOAD, action: { kind: 'reset-request', afterBytes: 50_000 } }]);
      // A one-shot stream: small enough to be held in memory, so the retry is possible.
      await c.repository('faults/mono').pushBlob(desc, Readable.from([data]));
      expect(proxy.log.filter((e) => e.method === 'POST' && UPLOAD.test(e.path))).toHaveLength(2);
      expect((await readStream(await c.repository('faults/mono').fetch(desc))).equals(data)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it("resumes a chunked upload from the registry's Range after a dropped connection", async () => {
    const events: RegistryEvent[] = [];
    const c = client({ monolithicUploadLimit: 16 * 1024, uploadChunkSize: 100_000 }, events);
    try {
      const { data, desc } = blob(450_000);
      proxy.setPlan([{ method: 'PATCH', path: UPLOAD, skip: 2, action: { kind: 'reset-request', afterBytes: 30_000 } }]);
      const repo = c.repository('faults/chunked');
      expect(await repo.pushBlob(desc, Readable.from([data]))).toBe('uploaded');
      const patches = proxy.log.filter((e) => e.method === 'PATCH');
      // Five chunks plus the one re-sent; each starts where the previous ended.
      expect(patches.map((e) => e.contentRange)).toEqual(['0-99999', '100000-199999', '200000-299999', '200000-299999', '300000-399999', '400000-449999']);
      expect(proxy.log.filter((e) => e.method === 'POST')).toHaveLength(1);
      expect(events).toContainEqual(expect.objectContaining({ type: 'upload-resumed', offset: 200_000 }));
      expect((await readStream(await repo.fetch(desc))).equals(data)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('fails a one-shot upload with UPLOAD_INTERRUPTED when the session cannot be resumed', async () => {
    const c = client({ monolithicUploadLimit: 16 * 1024, uploadChunkSize: 100_000 });
    try {
      const { data, desc } = blob(300_000);
      // The registry takes the chunk, the answer is lost: distribution 2.8 then refuses the
      // stale session, so the bytes already sent cannot be completed.
      proxy.setPlan([{ method: 'PATCH', path: UPLOAD, skip: 1, action: { kind: 'drop-response' } }]);
      const repo = c.repository('faults/interrupted');
      const err = await repo.pushBlob(desc, Readable.from([data])).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UPLOAD_INTERRUPTED' });
      expect(isTemporaryError(err)).toBe(false);
      expect(await repo.exists(desc)).toBe(false);
      // The same content from a re-openable source goes through: the upload restarts from POST.
      proxy.setPlan([{ method: 'PATCH', path: UPLOAD, action: { kind: 'drop-response' } }]);
      expect(await repo.pushBlob(desc, () => Readable.from([data]))).toBe('uploaded');
      expect(await repo.exists(desc)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('retries the POST and the final PUT of a one-shot streamed upload, which send no content', async () => {
    const events: RegistryEvent[] = [];
    const c = client({ monolithicUploadLimit: 16 * 1024, uploadChunkSize: 0 }, events);
    try {
      const { data, desc } = blob(200_000);
      proxy.setPlan([
        { method: 'POST', path: UPLOAD, action: { kind: 'status', status: 503 } },
        // The commit succeeds at the registry, its answer is lost: the repeated PUT finds the
        // session gone and the blob present.
        { method: 'PUT', path: UPLOAD, action: { kind: 'drop-response' } },
      ]);
      const repo = c.repository('faults/streamed');
      expect(await repo.pushBlob(desc, Readable.from([data]))).toBe('uploaded');
      expect(proxy.applied()).toBe(2);
      expect(proxy.log.filter((e) => e.method === 'PATCH')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'retry')).toHaveLength(2);
      expect((await readStream(await repo.fetch(desc))).equals(data)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('stops on abort with ABORTED, and close() does not wait for an abandoned download', async () => {
    const c = client();
    try {
      const { data, desc } = blob(3_000_000);
      const repo = c.repository('faults/abort');
      await repo.pushBlob(desc, () => Readable.from([data]));
      proxy.setPlan([{ method: 'GET', path: /\/blobs\/sha256:/, times: 2, action: { kind: 'throttle', bytesPerSecond: 500_000 } }]);
      const controller = new AbortController();
      const stream = await repo.fetch(desc, { signal: controller.signal });
      setTimeout(() => controller.abort(new Error('user cancelled')), 100);
      await expect(readStream(stream)).rejects.toMatchObject({ name: expect.stringMatching(/AbortError|AbortedError/) });
      // A second download nobody reads or destroys: closing the client ends it.
      const abandoned = await repo.fetch(desc);
      const ended = new Promise<unknown>((resolve) => abandoned.once('error', resolve));
      const started = Date.now();
      await c.close();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(await ended).toMatchObject({ code: expect.stringMatching(/CLIENT_CLOSED|UND_ERR_DESTROYED|CONNECTION_FAILED/) });
      await expect(repo.exists(desc)).rejects.toThrow(/closed/);
    } finally {
      await c.close();
    }
  });

  it('leaves no manifest behind when a blob cannot be pushed', async () => {
    const c = client({ retryPolicy: { ...quick, maxAttempts: 3 } });
    try {
      const image = await makeImage({ layers: [[{ name: 'x', content: randomBytes(5000) }], [{ name: 'y', content: randomBytes(5000) }]] });
      proxy.setPlan([{ method: 'PUT', path: new RegExp(`digest=${encodeURIComponent(image.layers[1]!.descriptor.digest)}`), times: 100, action: { kind: 'status', status: 503 } }]);
      const repo = c.repository('faults/partial');
      const err = await copyGraph(await storeOf([image]), repo, image.descriptor).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SERVER_ERROR', status: 503 });
      proxy.setPlan([]);
      expect(await repo.exists(image.descriptor)).toBe(false);
    } finally {
      await c.close();
    }
  });

  it('retries a request that times out', async () => {
    const events: RegistryEvent[] = [];
    const c = client({ retryPolicy: { ...quick, requestTimeoutMs: 300 } }, events);
    try {
      const { data, desc } = blob(1000);
      await c.repository('faults/slow').pushBlob(desc, data);
      proxy.setPlan([{ method: 'HEAD', path: /\/blobs\//, action: { kind: 'delay', ms: 1500 } }]);
      expect(await c.repository('faults/slow').exists(desc)).toBe(true);
      expect(events.filter((e) => e.type === 'retry').map((e) => (e as { cause: { code: string } }).cause.code)).toEqual(['TIMEOUT']);
    } finally {
      await c.close();
    }
  });
});

describe('pulls through a faulty network', () => {
  it('resumes resets, truncations and slow bodies, verifying every blob', async () => {
    const seed = client();
    const image = await makeImage({ layers: [[{ name: 'big', content: randomBytes(600_000) }], [{ name: 'small', content: 'x' }]] });
    await copyGraph(await storeOf([image]), seed.repository('faults/pull'), image.descriptor);
    await seed.close();
    const c = client();
    try {
      const big = image.layers[0]!.descriptor.digest;
      proxy.setPlan([
        { method: 'GET', path: new RegExp(big), action: { kind: 'reset-response', afterBytes: 100_000 } },
        { method: 'GET', path: new RegExp(big), action: { kind: 'truncate', afterBytes: 50_000 } },
        { method: 'GET', path: new RegExp(big), action: { kind: 'throttle', bytesPerSecond: 4_000_000 } },
        { method: 'GET', path: /\/manifests\//, action: { kind: 'truncate', afterBytes: 40 } },
        { method: 'GET', path: new RegExp(image.configDescriptor.digest), action: { kind: 'status', status: 502 } },
      ]);
      const pulled = new MemoryStore();
      await copyGraph(c.repository('faults/pull'), pulled, image.descriptor);
      expect(proxy.applied()).toBe(5);
      for (const [digest, bytes] of image.blobs) {
        const got = await readStream(await pulled.fetch({ mediaType: 'application/octet-stream', digest: digest as Descriptor['digest'], size: bytes.length }));
        expect(got.equals(bytes)).toBe(true);
      }
    } finally {
      await c.close();
    }
  });

  it('fails with a typed error when the faults outlast the policy', async () => {
    const c = client({ retryPolicy: { ...quick, maxAttempts: 2 } });
    try {
      const { data, desc } = blob(100_000);
      await c.repository('faults/giveup').pushBlob(desc, data);
      proxy.setPlan([{ method: 'GET', path: new RegExp(desc.digest), times: 10, action: { kind: 'reset-response', afterBytes: 1000 } }]);
      const err = await readStream(await c.repository('faults/giveup').fetch(desc)).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CONNECTION_FAILED' });
      expect(isTemporaryError(err)).toBe(true);
    } finally {
      await c.close();
    }
  });
});

describe('copyGraph hands the registry re-openable content', () => {
  let dir: { path: string; remove: () => Promise<void> };
  beforeAll(async () => {
    dir = await tempDir('stevedore-faults-');
  });
  afterAll(async () => {
    await dir?.remove();
  });

  /** An image with one 2 MiB layer (random, so gzip keeps it large), written to a fresh OCI layout. */
  async function layoutWithLargeImage(name: string): Promise<{ layout: OciLayout; image: Awaited<ReturnType<typeof makeImage>>; big: Descriptor }> {
    const image = await makeImage({ layers: [[{ name: 'big.bin', content: randomBytes(2 * 1024 * 1024) }], [{ name: 'small', content: 'x' }]] });
    const layout = await OciLayout.open(join(dir.path, name), { create: true });
    await copyGraph(await storeOf([image]), layout, image.descriptor);
    return { layout, image, big: image.layers[0]!.descriptor };
  }

  /** Blobs go as one streamed PATCH above 64 KiB: the 2 MiB layer is such an upload. */
  const streamedOptions = { monolithicUploadLimit: 64 * 1024, uploadChunkSize: 0 };
  const cutMidBody: FaultRule[] = [{ method: 'PATCH', path: UPLOAD, action: { kind: 'reset-request', afterBytes: 700_000 } }];

  it('restarts a large upload cut mid-body from a fresh stream, and every digest verifies', async () => {
    const { layout, image, big } = await layoutWithLargeImage('reopen');
    const events: RegistryEvent[] = [];
    const c = client(streamedOptions, events);
    try {
      proxy.setPlan(cutMidBody);
      const repo = c.repository('faults/reopen');
      expect(await copyGraph(layout, repo, image.descriptor)).toMatchObject({ copied: 4 });
      expect(proxy.applied()).toBe(1);
      // The cut upload was retried as a whole: a new session and the whole blob again.
      expect(proxy.log.filter((e) => e.method === 'PATCH')).toHaveLength(2);
      expect(proxy.log.filter((e) => e.method === 'DELETE')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'retry').map((e) => (e as { operation: string }).operation)).toEqual([`push blob faults/reopen@${big.digest}`]);
      proxy.setPlan([]);
      const pulled = new MemoryStore();
      await copyGraph(repo, pulled, image.descriptor);
      for (const [digest, bytes] of image.blobs) {
        const desc: Descriptor = { mediaType: 'application/octet-stream', digest: digest as Descriptor['digest'], size: bytes.length };
        expect((await readStream(await pulled.fetch(desc))).equals(bytes)).toBe(true);
      }
      expect((await readStream(await repo.fetch(big))).equals(image.layers[0]!.bytes)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('without retries fails with a typed error and pushes no manifest', async () => {
    const { layout, image, big } = await layoutWithLargeImage('noretry');
    const c = client({ ...streamedOptions, retryPolicy: noRetryPolicy });
    try {
      proxy.setPlan(cutMidBody);
      const repo = c.repository('faults/noretry');
      const err = await copyGraph(layout, repo, image.descriptor).catch((e: unknown) => e);
      expect(isRegistryError(err)).toBe(true);
      expect(err).toMatchObject({ code: 'CONNECTION_FAILED' });
      expect(proxy.applied()).toBe(1);
      proxy.setPlan([]);
      expect(await repo.exists(big)).toBe(false);
      expect(await repo.exists(image.descriptor)).toBe(false);
      // afterEach checks that no manifest in the registry references a missing blob.
    } finally {
      await c.close();
    }
  });

  it('hashes each byte once pushing from a layout and pulling into one', async () => {
    const { layout, image } = await layoutWithLargeImage('once');
    const total = [...image.blobs.values()].reduce((sum, bytes) => sum + bytes.length, 0);
    for (const options of [streamedOptions, {}]) {
      const c = client(options);
      const update = vi.spyOn(Digester.prototype, 'update');
      const hashed = (): number => update.mock.calls.reduce((sum, [chunk]) => sum + chunk.byteLength, 0);
      try {
        const repo = c.repository(`faults/once-${options === streamedOptions ? 'streamed' : 'monolithic'}`);
        await copyGraph(layout, repo, image.descriptor);
        // The layout's verifying stream is the only streaming hash of each blob on its way out
        // (the registry client checks the manifest in memory with digestOf, not a Digester).
        expect(hashed()).toBe(total);
        update.mockClear();
        const out = await OciLayout.open(join(dir.path, `once-pull-${options === streamedOptions ? 's' : 'm'}`), { create: true });
        await copyGraph(repo, out, image.descriptor);
        // On the way in the download's verifier is the only streaming hash of each layer and
        // config; the manifest, fetched whole and written from memory, is hashed by the layout.
        expect(hashed()).toBe(total);
        for (const [digest, bytes] of image.blobs) expect(await out.exists({ mediaType: 'application/octet-stream', digest: digest as Descriptor['digest'], size: bytes.length })).toBe(true);
      } finally {
        update.mockRestore();
        await c.close();
      }
    }
  });

  it('never commits a blob from a corrupt layout, whose own verifier is the only hash', async () => {
    const { layout, image, big } = await layoutWithLargeImage('corrupt');
    // Same size, different bytes: only the digest at EOF can tell.
    await writeFile(layout.blobPath(big.digest), randomBytes(big.size));
    for (const options of [streamedOptions, { monolithicUploadLimit: 64 * 1024, uploadChunkSize: 256 * 1024 }, {}]) {
      const c = client(options);
      try {
        const repo = c.repository('faults/corrupt');
        await expect(copyGraph(layout, repo, image.descriptor)).rejects.toBeInstanceOf(DigestMismatchError);
        // The same as a one-shot stream (monolithic, chunked or streamed by the options).
        await expect(repo.pushBlob(big, await layout.fetch(big))).rejects.toBeInstanceOf(DigestMismatchError);
        expect(await repo.exists(big)).toBe(false);
        expect(await repo.exists(image.descriptor)).toBe(false);
      } finally {
        await c.close();
      }
    }
  });

  it('never writes a corrupt registry blob into a layout, where the download’s verifier is the only hash', async () => {
    const image = await makeImage({ layers: [[{ name: 'big.bin', content: randomBytes(1024 * 1024) }]] });
    const big = image.layers[0]!.descriptor;
    const c = client();
    try {
      const repo = c.repository('faults/rotten');
      await copyGraph(await storeOf([image]), repo, image.descriptor);
      // Rot the registry's copy of the layer in place (same size).
      const hex = big.digest.slice('sha256:'.length);
      await writeFile(join(registry.rootDirectory, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), randomBytes(big.size));
      const out = await OciLayout.open(join(dir.path, 'rotten-pull'), { create: true });
      await expect(copyGraph(repo, out, image.descriptor)).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await out.exists(big)).toBe(false);
      expect(await out.exists(image.descriptor)).toBe(false);
      // No temporary file survives either.
      expect((await readdir(join(out.dir, 'blobs'))).filter((name) => name.startsWith('.tmp-'))).toEqual([]);
      // Repair it so the registry stays consistent for the other tests.
      await writeFile(join(registry.rootDirectory, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data'), image.layers[0]!.bytes);
    } finally {
      await c.close();
    }
  });
});

describe("mk3's use_retry_client semantics", () => {
  it('1 failure without retry fails; 2 failures with retry succeed; 10 failures with retry fail', async () => {
    const seed = client();
    const image = await makeImage();
    const repo = seed.repository('faults/gitpod');
    await copyGraph(await storeOf([image]), repo, image.descriptor);
    await repo.tag(image.descriptor, 'latest');
    await seed.close();
    const failing = (times: number): FaultRule[] => [{ path: /\/manifests\/latest$/, times, action: { kind: 'status', status: 503 } }];

    const plain = new RegistryClient(proxy.host, { credentials: anonymousCredentials, retryPolicy: noRetryPolicy });
    proxy.setPlan(failing(1));
    await expect(plain.repository('faults/gitpod').resolve('latest')).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await plain.close();

    const events: RegistryEvent[] = [];
    const retrying = new RegistryClient(proxy.host, { credentials: anonymousCredentials, retryPolicy: gitpodRetryPolicy, onEvent: (e) => events.push(e) });
    proxy.setPlan(failing(2));
    expect(await retrying.repository('faults/gitpod').resolve('latest')).toEqual(image.descriptor);
    expect(events.filter((e) => e.type === 'retry').map((e) => (e as { delayMs: number }).delayMs)).toEqual([500, 1000]);

    proxy.setPlan(failing(10));
    await expect(retrying.repository('faults/gitpod').resolve('latest')).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(proxy.applied()).toBe(4);
    await retrying.close();
  });
});
