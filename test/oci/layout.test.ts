import { mkdtemp, mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AbortedError } from '../../src/errors.js';
import {
  DigestMismatchError,
  InvalidDocumentError,
  InvalidReferenceError,
  NotFoundError,
  OCI,
  OciLayout,
  REF_NAME_ANNOTATION,
  SizeMismatchError,
  Digester,
  VerifyingStream,
  digestOf,
  formatLayoutReference,
  parseLayoutReference,
  readAll,
} from '../../src/oci/index.js';
import { blob, makeImage, pushImage } from './fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-layout-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Every file under `root`, relative, sorted. */
async function files(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();
}

async function readText(stream: Readable): Promise<string> {
  return Buffer.from(await readAll(stream, 1 << 30)).toString();
}

describe('OciLayout: opening', () => {
  it('creates a layout lazily: blobs on first push, oci-layout and index.json on first tag', async () => {
    const root = join(dir, 'new');
    const layout = await OciLayout.open(root, { create: true });
    await expect(stat(root)).rejects.toThrow();
    const image = await makeImage([{ 'hello.txt': 'hi' }]);
    await pushImage(layout, image);
    expect(await files(root)).toStrictEqual(image.blobs.map(([d]) => `blobs/sha256/${d.digest.slice(7)}`).sort());
    // Blobs alone do not make a layout.
    await expect(OciLayout.open(root)).rejects.toThrow(/missing oci-layout/);
    await layout.tag(image.manifest, 'v1');
    expect(JSON.parse(await readFile(join(root, 'oci-layout'), 'utf8'))).toStrictEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8'));
    expect(index).toMatchObject({ schemaVersion: 2, mediaType: OCI.index });
    expect(index.manifests).toHaveLength(1);
    expect(index.manifests[0]).toMatchObject({ digest: image.manifest.digest, annotations: { [REF_NAME_ANNOTATION]: 'v1' } });
    const reopened = await OciLayout.open(root);
    expect(await reopened.resolve('v1')).toMatchObject({ digest: image.manifest.digest, size: image.manifest.size });
    expect(reopened.dir).toBe(root);
  });

  it('refuses what is not a layout', async () => {
    await expect(OciLayout.open(join(dir, 'missing'))).rejects.toBeInstanceOf(NotFoundError);
    await writeFile(join(dir, 'file'), 'x');
    await expect(OciLayout.open(join(dir, 'file'))).rejects.toThrow(/not a directory/);
    await expect(OciLayout.open(dir)).rejects.toThrow(/missing oci-layout/);

    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    await expect(OciLayout.open(dir, { create: true })).rejects.toThrow(/has index.json but no oci-layout/);

    await writeFile(join(dir, 'oci-layout'), 'not json');
    await expect(OciLayout.open(dir)).rejects.toBeInstanceOf(InvalidDocumentError);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"2.0.0"}');
    await expect(OciLayout.open(dir)).rejects.toThrow(/unsupported imageLayoutVersion "2.0.0"/);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(dir, 'index.json'), '{"schemaVersion":2,"manifests":{}}');
    await expect(OciLayout.open(dir)).rejects.toThrow(/invalid OCI layout index .*index.json: manifests: Expected array/);
    await rm(join(dir, 'index.json'));
    await expect(OciLayout.open(dir)).rejects.toThrow(/missing index.json/);
    // The state a crash between writing oci-layout and index.json leaves is an empty layout.
    expect(await (await OciLayout.open(dir, { create: true })).tags()).toStrictEqual([]);
  });
});

describe('OciLayout: blobs', () => {
  it('pushes and fetches verified blobs', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const [desc, bytes] = blob(OCI.layer, text('layer bytes'));
    expect(await layout.exists(desc)).toBe(false);
    await expect(layout.fetch(desc)).rejects.toBeInstanceOf(NotFoundError);
    await layout.push(desc, Readable.from([bytes]));
    expect(await layout.exists(desc)).toBe(true);
    expect(await readText(await layout.fetch(desc))).toBe('layer bytes');
    expect((await stat(layout.blobPath(desc.digest))).mode & 0o777).toBe(0o644 & ~process.umask());
  });

  it('refuses a blob that does not match and leaves no file behind', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const [desc] = blob(OCI.layer, text('the real thing'));
    await expect(layout.push(desc, text('a forged thing'))).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(layout.push(desc, text('longer than the real thing'))).rejects.toBeInstanceOf(SizeMismatchError);
    const broken = new Readable({
      read() {
        this.push(Buffer.from('the '));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(layout.push(desc, broken)).rejects.toThrow('connection reset');
    expect(await files(dir)).toStrictEqual([]);
  });

  it('takes a stream that verifies the blob itself without hashing it again, and still refuses a bad one', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const [desc, bytes] = blob(OCI.layer, Buffer.alloc(300_000, 0x61));
    const verifying = (content: Uint8Array): VerifyingStream => {
      const stream = new VerifyingStream(desc);
      stream.end(content);
      return stream;
    };
    // Same size, wrong bytes: only the stream's own check at its end can tell, and the push must
    // not rename the temp file into place before that check has passed.
    await expect(layout.push(desc, verifying(Buffer.alloc(desc.size, 0x62)))).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(layout.push(desc, () => verifying(Buffer.alloc(desc.size, 0x62)))).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await files(dir)).toStrictEqual([]);

    const update = vi.spyOn(Digester.prototype, 'update');
    try {
      await layout.push(desc, verifying(bytes));
      const hashed = update.mock.calls.reduce((sum, [chunk]) => sum + chunk.byteLength, 0);
      expect(hashed).toBe(desc.size);
    } finally {
      update.mockRestore();
    }
    expect(await readText(await layout.fetch(desc))).toBe(Buffer.from(bytes).toString());
  });

  it('verifies a stream itself when the verifying stream it was given has already been read from', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const [desc, bytes] = blob(OCI.layer, text('the first byte goes missing'));
    const stream = new VerifyingStream(desc);
    stream.end(bytes);
    await new Promise((resolve) => stream.once('readable', resolve));
    stream.read(1);
    // The stream's own check passes (it saw every byte); the layout's catches the short read.
    await expect(layout.push(desc, stream)).rejects.toBeInstanceOf(SizeMismatchError);
    expect(await layout.exists(desc)).toBe(false);
    expect(await files(dir)).toStrictEqual([]);
  });

  it('accepts an opener, calling it once', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const [desc, bytes] = blob(OCI.layer, text('opened on demand'));
    let opened = 0;
    await layout.push(desc, async () => {
      opened++;
      return Readable.from([bytes]);
    });
    expect(opened).toBe(1);
    expect(await readText(await layout.fetch(desc))).toBe('opened on demand');
    await expect(layout.push(blob(OCI.layer, text('other'))[0], () => Promise.reject(new Error('cannot open')))).rejects.toThrow('cannot open');
    expect(await files(dir)).toStrictEqual([`blobs/sha256/${desc.digest.slice(7)}`]);
  });

  it('stops an aborted push and removes its temp file', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const [desc] = blob(OCI.layer, text('never finished'));
    const controller = new AbortController();
    const source = new Readable({ read() {} });
    source.push(Buffer.from('never'));
    const pushing = layout.push(desc, source, { signal: controller.signal });
    // Let the first chunk reach the temp file.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await files(dir)).some((f) => f.startsWith('blobs/.tmp-'))).toBe(true);
    controller.abort();
    await expect(pushing).rejects.toBeInstanceOf(AbortedError);
    expect(source.destroyed).toBe(true);
    expect(await files(dir)).toStrictEqual([]);
  });

  it('detects corruption on disk when the blob is read', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const [desc, bytes] = blob(OCI.layer, text('pristine content'));
    await layout.push(desc, bytes);
    await writeFile(layout.blobPath(desc.digest), 'tampered content');
    // Same size, so exists() cannot tell; the stream can.
    expect(await layout.exists(desc)).toBe(true);
    await expect(readText(await layout.fetch(desc))).rejects.toBeInstanceOf(DigestMismatchError);
    await truncate(layout.blobPath(desc.digest), 4);
    expect(await layout.exists(desc)).toBe(false);
    await expect(readText(await layout.fetch(desc))).rejects.toBeInstanceOf(SizeMismatchError);
    // Pushing the right content again repairs it.
    await layout.push(desc, bytes);
    expect(await readText(await layout.fetch(desc))).toBe('pristine content');
  });

  it('lets concurrent writers of the same blob all succeed, with one file as the result', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const other = await OciLayout.open(dir, { create: true });
    const big = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const [desc] = blob(OCI.layer, big);
    const chunked = (): Readable => Readable.from((function* () {
      for (let offset = 0; offset < big.length; offset += 65536) yield big.subarray(offset, offset + 65536);
    })());
    await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? layout : other).push(desc, chunked())));
    expect(await files(dir)).toStrictEqual([`blobs/sha256/${desc.digest.slice(7)}`]);
    expect(digestOf(await readFile(layout.blobPath(desc.digest)))).toBe(desc.digest);
  });
});

describe('OciLayout: index.json', () => {
  it('names images, replaces a name, resolves names and digests', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const one = await makeImage([{ a: '1' }]);
    const two = await makeImage([{ a: '2' }]);
    await pushImage(layout, one);
    await pushImage(layout, two);
    await layout.tag(one.manifest, 'latest');
    await layout.tag(one.manifest, 'v1');
    await layout.tag(two.manifest, 'latest');
    expect(await layout.tags()).toStrictEqual(['latest', 'v1']);
    expect((await layout.resolve('latest')).digest).toBe(two.manifest.digest);
    expect((await layout.resolve('v1')).digest).toBe(one.manifest.digest);
    expect(await layout.manifests()).toHaveLength(2);
    // The platform of the descriptor is kept in index.json.
    expect((await layout.resolve('v1')).platform).toStrictEqual({ os: 'linux', architecture: 'amd64' });

    // By digest: an entry of index.json, or a manifest blob that no entry names.
    expect((await layout.resolve(one.manifest.digest)).annotations?.[REF_NAME_ANNOTATION]).toBe('v1');
    const three = await makeImage([{ a: '3' }]);
    await pushImage(layout, three);
    expect(await layout.resolve(three.manifest.digest)).toStrictEqual({ mediaType: OCI.manifest, digest: three.manifest.digest, size: three.manifest.size });
    await expect(layout.resolve(three.config.digest)).rejects.toThrow(/invalid manifest sha256:[0-9a-f]{64}: /);
    await expect(layout.resolve(digestOf('absent'))).rejects.toBeInstanceOf(NotFoundError);
    await expect(layout.resolve('v9')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('refuses bad names and missing content', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    const image = await makeImage([{ a: '1' }]);
    await expect(layout.tag(image.manifest, 'v1')).rejects.toBeInstanceOf(NotFoundError);
    await pushImage(layout, image);
    for (const name of ['', '-v1', 'v1-', 'a b', 'a//b', '_x']) {
      await expect(layout.tag(image.manifest, name)).rejects.toBeInstanceOf(InvalidReferenceError);
    }
    // Full references are valid names (buildah and skopeo write them).
    await layout.tag(image.manifest, 'registry.example.com/org/app:v1.0');
    expect(await layout.tags()).toStrictEqual(['registry.example.com/org/app:v1.0']);
  });

  it('resolves the only image of a layout', async () => {
    const layout = await OciLayout.open(dir, { create: true });
    await expect(layout.resolveOnly()).rejects.toBeInstanceOf(NotFoundError);
    const one = await makeImage([{ a: '1' }]);
    const two = await makeImage([{ a: '2' }]);
    await pushImage(layout, one);
    await pushImage(layout, two);
    await layout.tag(one.manifest, 'one');
    expect((await layout.resolveOnly()).digest).toBe(one.manifest.digest);
    await layout.tag(two.manifest, 'two');
    await expect(layout.resolveOnly()).rejects.toThrow(/holds 2 images/);
  });

  it('replaces index.json atomically and loses no concurrent tag', async () => {
    const a = await OciLayout.open(dir, { create: true });
    const b = await OciLayout.open(dir, { create: true });
    const image = await makeImage([{ a: '1' }]);
    await pushImage(a, image);
    await a.tag(image.manifest, 'first');

    // A reader polling index.json while 40 tags are written must only ever see whole documents.
    let writing = true;
    let reads = 0;
    const reader = (async () => {
      while (writing) {
        JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
        reads++;
      }
    })();
    await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).tag(image.manifest, `t${i}`)));
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(await a.tags()).toHaveLength(41);
    // Replaced by rename (a new inode), not rewritten in place; and no temp file is left.
    const inodeBefore = (await stat(join(dir, 'index.json'))).ino;
    await b.tag(image.manifest, 'last');
    expect((await stat(join(dir, 'index.json'))).ino).not.toBe(inodeBefore);
    expect((await files(dir)).filter((f) => f.includes('.tmp-'))).toStrictEqual([]);
  });

  it('reads index.json entries as written by other tools', async () => {
    await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
    const image = await makeImage([{ a: '1' }]);
    const layout = await OciLayout.open(dir, { create: true });
    await pushImage(layout, image);
    await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}\n');
    // umoci writes no top-level mediaType; extra fields must survive our rewrite.
    await writeFile(
      join(dir, 'index.json'),
      JSON.stringify({ schemaVersion: 2, annotations: { 'org.example': 'kept' }, manifests: [{ ...image.manifest, annotations: { [REF_NAME_ANNOTATION]: 'old' } }] }),
    );
    const reopened = await OciLayout.open(dir);
    expect((await reopened.resolve('old')).digest).toBe(image.manifest.digest);
    await reopened.tag(image.manifest, 'new');
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.annotations).toStrictEqual({ 'org.example': 'kept' });
    expect(await reopened.tags()).toStrictEqual(['new', 'old']);
  });
});

describe('parseLayoutReference', () => {
  it.each([
    ['oci:/tmp/x', { dir: '/tmp/x' }],
    ['oci:/tmp/x:v1', { dir: '/tmp/x', tag: 'v1' }],
    ['oci:relative/dir:latest', { dir: 'relative/dir', tag: 'latest' }],
    ['oci:./x', { dir: './x' }],
    // As with skopeo, the first ':' ends the directory; the name may hold more colons.
    ['oci:/tmp/x:registry.local:5000/app:v1', { dir: '/tmp/x', tag: 'registry.local:5000/app:v1' }],
  ])('%s', (input, expected) => {
    expect(parseLayoutReference(input)).toStrictEqual(expected);
    expect(formatLayoutReference(parseLayoutReference(input))).toBe(input);
  });

  it.each([
    ['/tmp/x', /starts with "oci:"/],
    ['docker://alpine', /starts with "oci:"/],
    ['oci:', /missing directory/],
    ['oci::v1', /missing directory/],
    ['oci:/tmp/x:', /empty image name/],
    ['oci:/tmp/x:bad name', /not a valid image name/],
  ])('rejects %j', (input, reason) => {
    expect(() => parseLayoutReference(input)).toThrow(reason);
    expect(() => parseLayoutReference(input)).toThrow(InvalidReferenceError);
  });
});
