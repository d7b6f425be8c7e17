import { Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import {
  DigestMismatchError,
  MemoryStore,
  NotFoundError,
  OCI,
  SizeMismatchError,
  Digester,
  VerifyingStream,
  digestOf,
  readAll,
  type Descriptor,
} from '../../src/oci/index.js';
import { blob } from './fixtures.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('MemoryStore', () => {
  it('stores verified content and serves it as a verified stream', async () => {
    const store = new MemoryStore();
    const [desc, bytes] = blob(OCI.layer, text('hello world'));
    expect(await store.exists(desc)).toBe(false);
    await store.push(desc, bytes);
    expect(await store.exists(desc)).toBe(true);
    expect(await store.exists({ ...desc, size: desc.size + 1 })).toBe(false);
    expect(Buffer.from(await readAll(await store.fetch(desc), 100))).toStrictEqual(Buffer.from(bytes));
    expect(store.size).toBe(1);
  });

  it('accepts streams and async iterables, and pushing twice is harmless', async () => {
    const store = new MemoryStore();
    const [desc, bytes] = blob(OCI.layer, text('abcdef'));
    await store.push(desc, Readable.from([bytes.subarray(0, 2), bytes.subarray(2)]));
    await store.push(desc, (async function* () {
      yield bytes.subarray(0, 3);
      yield bytes.subarray(3);
    })());
    expect(store.size).toBe(1);
  });

  it('refuses content that does not match its descriptor and keeps nothing', async () => {
    const store = new MemoryStore();
    const [desc] = blob(OCI.layer, text('expected'));
    await expect(store.push(desc, text('imposter'))).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.push(desc, text('too long for it'))).rejects.toBeInstanceOf(SizeMismatchError);
    await expect(store.push(desc, text('short'))).rejects.toBeInstanceOf(SizeMismatchError);
    const failing = new Readable({
      read() {
        this.destroy(new Error('source broke'));
      },
    });
    await expect(store.push(desc, failing)).rejects.toThrow('source broke');
    expect(await store.exists(desc)).toBe(false);
    expect(store.size).toBe(0);
  });

  it('accepts an opener, and a verifying stream for the blob without hashing it twice', async () => {
    const store = new MemoryStore();
    const [desc, bytes] = blob(OCI.layer, text('from an opener'));
    await store.push(desc, () => Readable.from([bytes]));
    expect(Buffer.from(await readAll(await store.fetch(desc), 100)).toString()).toBe('from an opener');

    const other = new MemoryStore();
    const update = vi.spyOn(Digester.prototype, 'update');
    try {
      await other.push(desc, await store.fetch(desc));
      expect(update.mock.calls.reduce((sum, [chunk]) => sum + chunk.byteLength, 0)).toBe(desc.size);
    } finally {
      update.mockRestore();
    }
    expect(await other.exists(desc)).toBe(true);

    // A verifying stream whose content is wrong fails at its end: nothing is stored.
    const wrong = new VerifyingStream(desc);
    wrong.end(Buffer.alloc(desc.size, 0x78));
    const fresh = new MemoryStore();
    await expect(fresh.push(desc, wrong)).rejects.toBeInstanceOf(DigestMismatchError);
    expect(fresh.size).toBe(0);
  });

  it('honours an aborted signal', async () => {
    const store = new MemoryStore();
    const [desc, bytes] = blob(OCI.layer, text('x'));
    const controller = new AbortController();
    controller.abort();
    await expect(store.push(desc, bytes, { signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    const never = new Readable({ read() {} });
    const late = new AbortController();
    const pushing = store.push(desc, never, { signal: late.signal });
    late.abort();
    await expect(pushing).rejects.toBeInstanceOf(AbortedError);
    expect(never.destroyed).toBe(true);
  });

  it('verifies fetches against the caller’s descriptor', async () => {
    const store = new MemoryStore();
    const [desc, bytes] = blob(OCI.layer, text('content'));
    await store.push(desc, bytes);
    await expect(store.fetch({ ...desc, size: 3 })).rejects.toBeInstanceOf(SizeMismatchError);
    await expect(store.fetch({ ...desc, digest: digestOf('other') })).rejects.toBeInstanceOf(NotFoundError);
  });

  it('resolves tags and digests, and lists tags', async () => {
    const store = new MemoryStore();
    const [desc, bytes] = blob(OCI.manifest, text('{"schemaVersion":2}'));
    await store.push(desc, bytes);
    const tagged: Descriptor = { ...desc, annotations: { a: 'b' } };
    await store.tag(tagged, 'v2');
    await store.tag(desc, 'v1');
    expect(await store.resolve('v2')).toStrictEqual(tagged);
    expect(await store.resolve(desc.digest)).toStrictEqual(desc);
    expect(await store.tags()).toStrictEqual(['v1', 'v2']);
    await expect(store.resolve('v3')).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.resolve(digestOf('nothing'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.tag({ ...desc, digest: digestOf('nothing') }, 'v4')).rejects.toBeInstanceOf(NotFoundError);
  });
});
