import { Readable } from 'node:stream';
import { constants, crc32, deflateRawSync, gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GzipEncoder } from '../../src/layers/index.js';
import { MIN_STORED_RUN, RANDOM_UNIT } from '../../src/layers/deflate-pool.js';
import { gzipHeader } from '../../src/layers/gzip.js';
import { Rng, randomBytesOf, textBytes } from '../fixtures/tree.js';
import { collect, run } from './helpers.js';

// Incompressible segments of the input are written as stored deflate blocks instead of being
// deflated (see deflate-pool.ts). These tests pin the exact bytes against RFC 1951/1952 built
// by hand, and check that compressible content is still deflated.

const UNIT = RANDOM_UNIT;
const KiB = 1024;

async function gzip(data: Uint8Array, options: { level?: number; workers?: number; chunk?: number; blockSize?: number } = {}): Promise<Buffer> {
  const chunk = options.chunk ?? 65536;
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.byteLength; i += chunk) chunks.push(Buffer.from(data.subarray(i, i + chunk)));
  return collect(Readable.from(chunks).pipe(new GzipEncoder({ level: options.level, workers: options.workers, blockSize: options.blockSize })));
}

/** RFC 1951 3.2.4: blocks of at most 65535 bytes, each a header byte (BFINAL, BTYPE 00), LEN, NLEN. */
function stored(bytes: Uint8Array, final: boolean): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.byteLength; ) {
    const length = Math.min(65535, bytes.byteLength - at);
    const last = at + length === bytes.byteLength;
    const header = Buffer.alloc(5);
    header[0] = last && final ? 1 : 0;
    header.writeUInt16LE(length, 1);
    header.writeUInt16LE(~length & 0xffff, 3);
    parts.push(header, Buffer.from(bytes.subarray(at, at + length)));
    at += length;
  }
  return Buffer.concat(parts);
}

function deflated(bytes: Uint8Array, final: boolean, dictionary?: Uint8Array): Buffer {
  return deflateRawSync(bytes, {
    level: 6,
    finishFlush: final ? constants.Z_FINISH : constants.Z_SYNC_FLUSH,
    ...(dictionary === undefined ? {} : { dictionary }),
  });
}

/** RFC 1952: the fixed header, the deflate stream, CRC-32 and size of the input. */
function member(level: number, deflate: readonly Buffer[], input: Uint8Array): Buffer {
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(input) >>> 0, 0);
  trailer.writeUInt32LE(input.byteLength % 2 ** 32, 4);
  return Buffer.concat([gzipHeader(level), ...deflate, trailer]);
}

describe('gzip of incompressible input', () => {
  it('stores random data verbatim in stored blocks, block by block, at every level', async () => {
    const data = randomBytesOf(new Rng(11), 2.5 * 1024 * 1024);
    const mib = 1024 * 1024;
    for (const level of [1, 6, 9]) {
      const expected = member(level, [stored(data.subarray(0, mib), false), stored(data.subarray(mib, 2 * mib), false), stored(data.subarray(2 * mib), true)], data);
      const out = await gzip(data, { level, workers: 2, chunk: 100_003 });
      expect(out.equals(expected)).toBe(true);
    }
    expect((await run('gzip', ['-t'], await gzip(data))).code).toBe(0);
  });

  it('deflates the text and stores the random run of one block; a run after random bytes is not primed with them', async () => {
    const rng = new Rng(12);
    const text = textBytes(rng, 128 * KiB);
    const random = randomBytesOf(rng, 64 * KiB);
    const moreText = textBytes(rng, 65 * KiB + 1000);
    const data = Buffer.concat([text, random, moreText]);
    const expected = member(6, [deflated(text, false), stored(random, false), deflated(moreText, true)], data);
    const out = await gzip(data, { chunk: 7777 });
    expect(out.equals(expected)).toBe(true);
    expect(gunzipSync(out).equals(data)).toBe(true);
    expect((await run('gzip', ['-t'], out)).code).toBe(0);
  });

  it('primes a block with the tail of the previous one only when that tail is not random', async () => {
    const rng = new Rng(16);
    const blockSize = 64 * KiB;
    const random = randomBytesOf(rng, blockSize);
    const text = textBytes(rng, blockSize);
    const moreText = textBytes(rng, 10 * KiB);
    const data = Buffer.concat([random, text, moreText]);
    const expected = member(6, [stored(random, false), deflated(text, false), deflated(moreText, true, text.subarray(blockSize - 32 * KiB))], data);
    expect((await gzip(data, { blockSize, workers: 2 })).equals(expected)).toBe(true);
  });

  it('deflates only the unit around a tar header in random data', async () => {
    const rng = new Rng(17);
    const data = randomBytesOf(rng, 256 * KiB);
    const header = 25 * UNIT;
    data.fill(0, header, header + 512);
    data.write('ustar\u000000', header + 257, 'latin1');
    const expected = member(6, [stored(data.subarray(0, header), false), deflated(data.subarray(header, header + UNIT), false), stored(data.subarray(header + UNIT), true)], data);
    expect((await gzip(data)).equals(expected)).toBe(true);
  });

  it('deflates random stretches too short to store, and a last partial unit', async () => {
    const rng = new Rng(13);
    // Random bytes shorter than a stored run, between text: one deflate run, as plain gzip.
    const between = Buffer.concat([textBytes(rng, 64 * KiB), randomBytesOf(rng, MIN_STORED_RUN - UNIT), textBytes(rng, 64 * KiB)]);
    expect((await gzip(between)).equals(gzipSync(between))).toBe(true);
    // A random input that ends in a partial unit: stored up to it, then the rest deflated.
    const random = randomBytesOf(rng, 100 * KiB + 1234);
    const whole = random.byteLength - 1234;
    expect((await gzip(random)).equals(member(6, [stored(random.subarray(0, whole), false), deflated(random.subarray(whole), true)], random))).toBe(true);
  });

  it('keeps deflating content that only looks random byte by byte: skewed, evenly spread, or repeating', async () => {
    const rng = new Rng(14);
    const size = 256 * KiB;
    // Random bytes with one in ten set to zero: a skewed histogram (7.65 bits of entropy per
    // byte), which Huffman coding shrinks by about 4%.
    const skewed = randomBytesOf(rng, size);
    for (let i = 0; i < size; i += 10) skewed[i] = 0;
    // Every byte value equally often (a counter): more even than random data ever is.
    const counter = Buffer.alloc(size);
    for (let i = 0; i < size; i++) counter[i] = i & 0xff;
    // A random 4 KiB repeated: every unit looks random, but their counts together clump at
    // multiples of the repeat count.
    const chunk = randomBytesOf(rng, 4096);
    const repeating = Buffer.concat(Array.from({ length: size / 4096 }, () => chunk));
    const cases: [string, Buffer, number][] = [
      ['skewed', skewed, 0.97],
      ['counter', counter, 0.01],
      ['repeating', repeating, 0.1],
    ];
    for (const [name, data, ratio] of cases) {
      const out = await gzip(data);
      expect({ name, ratio: out.byteLength / data.byteLength < ratio }).toEqual({ name, ratio: true });
      expect(out.equals(gzipSync(data))).toBe(true);
    }
  });

  it('gives the same bytes for any worker count, chunking and segment alignment, within 1% of gzip', async () => {
    const rng = new Rng(15);
    // Random stretches that start and end mid-segment, between text of assorted lengths.
    const data = Buffer.concat([textBytes(rng, 100_000), randomBytesOf(rng, 700_000), textBytes(rng, 50_000), randomBytesOf(rng, 1_300_000), textBytes(rng, 400_000)]);
    for (const blockSize of [64 * KiB, 1024 * 1024]) {
      const reference = await gzip(data, { workers: 1, blockSize });
      for (const [workers, chunk] of [[2, 1000], [3, 333_333], [8, data.byteLength]] as const) {
        expect((await gzip(data, { workers, chunk, blockSize })).equals(reference)).toBe(true);
      }
      expect(gunzipSync(reference).equals(data)).toBe(true);
      expect((await run('gzip', ['-t'], reference)).code).toBe(0);
      expect(reference.byteLength).toBeLessThan(gzipSync(data).byteLength * 1.01);
    }
  });
});
