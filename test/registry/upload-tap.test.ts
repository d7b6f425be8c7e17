import { randomBytes } from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Digester, OCI, type Descriptor } from '../../src/oci/index.js';
import { anonymousCredentials, RegistryClient, type RegistryEvent, type RetryPolicy } from '../../src/registry/index.js';
import type { BlobUploadTap } from '../../src/registry/upload.js';
import { findDanglingReferences, readStream, sha256, startFaultProxy, startRegistry, type FaultProxy, type TestRegistry } from '../harness/index.js';

// A BlobUploadTap uploads what flows through it while passing it on: how a layer reaches the
// registry while it is being compressed. Real registry, faults injected by the proxy.

let registry: TestRegistry;
let proxy: FaultProxy;

const quick: RetryPolicy = { name: 'test', maxAttempts: 4, backoff: 'exponential', initialDelayMs: 20, maxDelayMs: 100, jitter: true, requestTimeoutMs: 5_000, maxRetryAfterMs: 1_000 };
const UPLOAD = /\/blobs\/uploads\//;

beforeAll(async () => {
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.url);
});

afterEach(async () => {
  proxy.setPlan([]);
  expect(await findDanglingReferences(registry.rootDirectory)).toEqual([]);
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
});

function client(options: { uploadChunkSize?: number } = {}, events?: RegistryEvent[]): RegistryClient {
  return new RegistryClient(proxy.host, {
    credentials: anonymousCredentials,
    retryPolicy: quick,
    // Small, so that a later push of the same blob asks the registry (HEAD) before sending.
    monolithicUploadLimit: 16 * 1024,
    ...options,
    ...(events ? { onEvent: (e: RegistryEvent) => events.push(e) } : {}),
  });
}

function chunksOf(data: Buffer, size = 64 * 1024): Buffer[] {
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.byteLength; i += size) chunks.push(data.subarray(i, i + size));
  return chunks;
}

/** Runs `source` through the tap into memory: what the tap's downstream (a file, say) receives. */
async function through(tap: BlobUploadTap, source: Iterable<Buffer> | AsyncIterable<Buffer>): Promise<Buffer> {
  const sink = new PassThrough();
  const received = readStream(sink);
  // A failed pipeline fails the reader too; the pipeline's error is the one to report.
  received.catch(() => undefined);
  await pipeline(Readable.from(source), tap, sink);
  return received;
}

function descriptorOf(data: Buffer): Descriptor {
  return { mediaType: OCI.layerGzip, digest: sha256(data), size: data.byteLength };
}

describe('BlobUploadTap', () => {
  it('uploads what flows through in one streamed PATCH while passing it on unchanged', async () => {
    const events: RegistryEvent[] = [];
    const c = client({}, events);
    try {
      const data = randomBytes(3 * 1024 * 1024 + 123);
      const repo = c.repository('tap/streamed');
      const tap = repo.uploadTap();
      expect((await through(tap, chunksOf(data))).equals(data)).toBe(true);
      expect(await tap.done).toEqual({ digest: sha256(data), size: data.byteLength });
      expect(proxy.log.filter((e) => UPLOAD.test(e.path)).map((e) => e.method)).toEqual(['POST', 'PATCH', 'PUT']);
      expect(events).toContainEqual({ type: 'blob-done', registry: c.registry, repository: 'tap/streamed', direction: 'push', digest: sha256(data), size: data.byteLength });
      expect((await readStream(await repo.fetch(descriptorOf(data)))).equals(data)).toBe(true);
      // The push that follows (from the copy the downstream kept) finds it there.
      expect(await repo.pushBlob(descriptorOf(data), () => Readable.from([data]))).toBe('skipped');
    } finally {
      await c.close();
    }
  });

  it('commits under the digest its caller already computed (hashed), which the registry still checks', async () => {
    const c = client();
    try {
      const data = randomBytes(500_000);
      const repo = c.repository('tap/hashed');
      const hashed = new Digester();
      const tap = repo.uploadTap({ hashed });
      expect((await through(tap, (async function* () { for (const chunk of chunksOf(data)) { hashed.update(chunk); yield chunk; } })())).equals(data)).toBe(true);
      expect(await tap.done).toEqual({ digest: sha256(data), size: data.byteLength });
      expect(await repo.exists(descriptorOf(data))).toBe(true);
      // A caller whose hash is not of these bytes gets a refused commit, never a wrong blob.
      const wrong = repo.uploadTap({ hashed: { digest: () => sha256(Buffer.from('something else')), size: data.byteLength } });
      const other = randomBytes(100_000);
      await through(wrong, chunksOf(other));
      await expect(wrong.done).rejects.toMatchObject({ code: expect.stringMatching(/DIGEST_INVALID|BLOB_UPLOAD_INVALID|SIZE_INVALID/) });
      expect(await repo.exists(descriptorOf(other))).toBe(false);
    } finally {
      await c.close();
    }
  });

  it("sends Content-Range chunks with uploadChunkSize, resuming from the registry's Range after a dropped connection", async () => {
    const c = client({ uploadChunkSize: 256 * 1024 });
    try {
      const data = randomBytes(1024 * 1024 + 5000);
      proxy.setPlan([{ method: 'PATCH', path: UPLOAD, skip: 1, action: { kind: 'reset-request', afterBytes: 30_000 } }]);
      const repo = c.repository('tap/chunked');
      const tap = repo.uploadTap();
      expect((await through(tap, chunksOf(data, 10_000))).equals(data)).toBe(true);
      expect(await tap.done).toEqual({ digest: sha256(data), size: data.byteLength });
      const patches = proxy.log.filter((e) => e.method === 'PATCH');
      // Five chunks plus the one re-sent, each starting where the registry stood.
      expect(patches).toHaveLength(6);
      expect(patches.map((p) => p.contentRange?.split('-')[0])).toEqual(['0', '262144', '262144', '524288', '786432', '1048576']);
      expect((await readStream(await repo.fetch(descriptorOf(data)))).equals(data)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('keeps passing the content on when the upload breaks mid-body, commits nothing, and reports UPLOAD_INTERRUPTED', async () => {
    const c = client();
    try {
      const data = randomBytes(2 * 1024 * 1024);
      proxy.setPlan([{ method: 'PATCH', path: UPLOAD, action: { kind: 'reset-request', afterBytes: 100_000 } }]);
      const repo = c.repository('tap/interrupted');
      const tap = repo.uploadTap();
      expect((await through(tap, chunksOf(data))).equals(data)).toBe(true);
      await expect(tap.done).rejects.toMatchObject({ code: 'UPLOAD_INTERRUPTED' });
      expect(proxy.log.filter((e) => e.method === 'PUT')).toHaveLength(0);
      expect(proxy.log.filter((e) => e.method === 'DELETE')).toHaveLength(1);
      expect(await repo.exists(descriptorOf(data))).toBe(false);
      // The fallback the tap leaves to its caller: an ordinary push of the kept copy.
      expect(await repo.pushBlob(descriptorOf(data), () => Readable.from([data]))).toBe('uploaded');
    } finally {
      await c.close();
    }
  });

  it('reports a refused upload through done, and the content still flows', async () => {
    const c = client();
    try {
      const data = randomBytes(300_000);
      const denied = JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] });
      proxy.setPlan([{ method: 'POST', path: UPLOAD, action: { kind: 'status', status: 403, body: denied, headers: { 'content-type': 'application/json' } } }]);
      const tap = c.repository('tap/denied').uploadTap();
      expect((await through(tap, chunksOf(data))).equals(data)).toBe(true);
      await expect(tap.done).rejects.toMatchObject({ code: 'DENIED', status: 403 });
      expect(proxy.log.filter((e) => e.method === 'PATCH')).toHaveLength(0);
    } finally {
      await c.close();
    }
  });

  for (const when of ['before its PATCH starts', 'during its PATCH'] as const) {
    it(`cancels the session and commits nothing when the content is cut short ${when}`, async () => {
      const c = client();
      try {
        const data = randomBytes(1024 * 1024);
        const failing = async function* (): AsyncGenerator<Buffer> {
          yield* chunksOf(data.subarray(0, 512 * 1024));
          // At once, the POST is not back yet; or only once the registry is receiving the PATCH.
          for (let waited = 0; when === 'during its PATCH' && !proxy.log.some((e) => e.method === 'PATCH'); waited += 10) {
            if (waited > 10_000) throw new Error('the PATCH never started');
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          throw new Error('the layer source failed');
        };
        const tap = c.repository('tap/cut').uploadTap();
        await expect(through(tap, failing())).rejects.toThrow('the layer source failed');
        await expect(tap.done).rejects.toThrow('the layer source failed');
        expect(proxy.log.filter((e) => e.method === 'PATCH')).toHaveLength(when === 'during its PATCH' ? 1 : 0);
        expect(proxy.log.filter((e) => e.method === 'PUT')).toHaveLength(0);
        // Every session opened is cancelled (cut before its POST, the tap opens none).
        const opened = proxy.log.filter((e) => e.method === 'POST').length;
        expect(opened).toBe(when === 'during its PATCH' ? 1 : opened);
        expect(proxy.log.filter((e) => e.method === 'DELETE')).toHaveLength(opened);
      } finally {
        await c.close();
      }
    });
  }

  it('stops uploading on abort without stopping the content', async () => {
    const c = client();
    try {
      const data = randomBytes(1024 * 1024);
      const controller = new AbortController();
      const tap = c.repository('tap/aborted').uploadTap({ signal: controller.signal });
      const slow = async function* (): AsyncGenerator<Buffer> {
        for (const [i, chunk] of chunksOf(data).entries()) {
          if (i === 4) controller.abort(new Error('build cancelled'));
          yield chunk;
        }
      };
      expect((await through(tap, slow())).equals(data)).toBe(true);
      await expect(tap.done).rejects.toMatchObject({ code: 'ABORTED' });
      expect(proxy.log.filter((e) => e.method === 'PUT')).toHaveLength(0);
    } finally {
      await c.close();
    }
  });

  it('uploads an empty blob', async () => {
    const c = client();
    try {
      const empty = Buffer.alloc(0);
      const repo = c.repository('tap/empty');
      const tap = repo.uploadTap();
      expect((await through(tap, [])).byteLength).toBe(0);
      expect(await tap.done).toEqual({ digest: sha256(empty), size: 0 });
      expect(await repo.exists(descriptorOf(empty))).toBe(true);
    } finally {
      await c.close();
    }
  });
});
