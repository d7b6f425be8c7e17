import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import {
  DigestMismatchError,
  DigestingStream,
  InvalidDigestError,
  SizeMismatchError,
  VerifyingStream,
  digestHex,
  digestOf,
  isDigest,
  isVerifyingStreamFor,
  parseDigest,
  verifyBytes,
} from '../../src/oci/index.js';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream);
}

describe('digests', () => {
  it('parses sha256 and sha512 and rejects the rest with a reason', () => {
    expect(parseDigest(EMPTY_SHA256)).toBe(EMPTY_SHA256);
    expect(isDigest(digestOf('', 'sha512'))).toBe(true);
    expect(digestHex(parseDigest(EMPTY_SHA256))).toHaveLength(64);
    const cases: Array<[string, RegExp]> = [
      ['e3b0c442', /missing "algorithm:" prefix/],
      ['md5:d41d8cd98f00b204e9800998ecf8427e', /unsupported algorithm/],
      ['sha256:abc', /64 hex characters, got 3/],
      [EMPTY_SHA256.toUpperCase().replace('SHA256', 'sha256'), /lowercase hex/],
      [`sha512:${'a'.repeat(64)}`, /128 hex characters/],
    ];
    for (const [input, reason] of cases) {
      expect(() => parseDigest(input)).toThrow(InvalidDigestError);
      expect(() => parseDigest(input)).toThrow(reason);
    }
  });

  it('digests bytes and strings alike', () => {
    expect(digestOf('')).toBe(EMPTY_SHA256);
    expect(digestOf(new TextEncoder().encode('abc'))).toBe(digestOf('abc'));
  });

  it('hashes and counts a stream passing through', async () => {
    const hashing = new DigestingStream();
    const chunks = [Buffer.from('hello '), Buffer.from('world')];
    await pipeline(Readable.from(chunks), hashing, drain);
    expect(hashing.size).toBe(11);
    expect(hashing.digest()).toBe(digestOf('hello world'));
  });

  it('verifies a stream at EOF and fails with typed errors', async () => {
    const good = new VerifyingStream({ digest: digestOf('abc'), size: 3 });
    await expect(pipeline(Readable.from([Buffer.from('abc')]), good, drain)).resolves.toBeUndefined();

    const wrongDigest = new VerifyingStream({ digest: digestOf('abd'), size: 3 });
    await expect(pipeline(Readable.from([Buffer.from('abc')]), wrongDigest, drain)).rejects.toBeInstanceOf(DigestMismatchError);

    const short = new VerifyingStream({ digest: digestOf('abc'), size: 4 });
    await expect(pipeline(Readable.from([Buffer.from('abc')]), short, drain)).rejects.toBeInstanceOf(SizeMismatchError);
  });

  it('fails as soon as a stream exceeds its announced size', async () => {
    let produced = 0;
    async function* endless() {
      for (;;) {
        produced += 1024;
        yield Buffer.alloc(1024);
        if (produced > 1024 * 1024) throw new Error('the verifier kept reading past its limit');
      }
    }
    const verifying = new VerifyingStream({ digest: EMPTY_SHA256, size: 10 });
    await expect(pipeline(Readable.from(endless()), verifying, drain)).rejects.toBeInstanceOf(SizeMismatchError);
    expect(produced).toBeLessThan(64 * 1024);
  });

  it('exposes what a verifying stream expects, so a consumer can tell it needs no second hash', async () => {
    const desc = { digest: digestOf('abc'), size: 3 };
    const fresh = (): VerifyingStream => {
      const stream = new VerifyingStream(desc);
      stream.end(Buffer.from('abc'));
      return stream;
    };
    const stream = fresh();
    expect(stream.expectedDigest).toBe(desc.digest);
    expect(stream.expectedSize).toBe(3);
    expect(new VerifyingStream({ digest: desc.digest }).expectedSize).toBeUndefined();

    expect(isVerifyingStreamFor(stream, desc)).toBe(true);
    expect(isVerifyingStreamFor(stream, { digest: digestOf('abd'), size: 3 })).toBe(false);
    expect(isVerifyingStreamFor(stream, { ...desc, size: 4 })).toBe(false);
    expect(isVerifyingStreamFor(new VerifyingStream({ digest: desc.digest }), desc)).toBe(false);
    expect(isVerifyingStreamFor(Readable.from([Buffer.from('abc')]), desc)).toBe(false);
    // A stream that has handed out bytes would vouch at its end for bytes the new reader missed.
    const read = fresh();
    await new Promise((resolve) => read.once('readable', resolve));
    expect(read.read(1)).not.toBeNull();
    expect(isVerifyingStreamFor(read, desc)).toBe(false);
    const flowing = fresh();
    flowing.resume();
    expect(isVerifyingStreamFor(flowing, desc)).toBe(false);
    const destroyed = fresh();
    destroyed.destroy();
    expect(isVerifyingStreamFor(destroyed, desc)).toBe(false);
  });

  it('verifies bytes in memory', () => {
    expect(() => verifyBytes(Buffer.from('abc'), { digest: digestOf('abc'), size: 3 })).not.toThrow();
    expect(() => verifyBytes(Buffer.from('abc'), { digest: digestOf('abc'), size: 2 })).toThrow(SizeMismatchError);
    expect(() => verifyBytes(Buffer.from('abc'), { digest: EMPTY_SHA256 })).toThrow(DigestMismatchError);
  });
});
