import { createReadStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decompress, readTar, validateImage } from '../../src/layers/index.js';
import { OciLayout, copyGraph, formatReference, parseReference } from '../../src/oci/index.js';
import { RegistryClientPool, noRetryPolicy } from '../../src/registry/index.js';
import {
  SUBASSEMBLY_MANIFEST_MEDIA_TYPE,
  SubassemblyError,
  createSubassembly,
  encodeSubassemblyManifest,
  pushSquashedImage,
  resolveSquashSource,
  squashedImage,
  type SquashResult,
} from '../../src/subassembly/index.js';
import { makeBusyboxImage } from '../fixtures/make-busybox.js';
import { startFaultProxy, startRegistry, tempDir, type FaultProxy, type TestRegistry } from '../harness/index.js';
import { craftImage, craftIndex, describeTree, dir, file, opaque, pushTo, sha256, umociUnpack, whiteout, type CraftedImage, type Entry } from './helpers.js';

/** Three layers exercising every merge rule: a whiteout, an opaque directory, an overwrite, a whole directory removed. */
const LAYERED: readonly (readonly Entry[])[] = [
  [
    dir('etc/'),
    file('etc/keep.txt', 'keep\n'),
    file('etc/gone.txt', 'gone\n'),
    dir('opt/'),
    dir('opt/old/'),
    file('opt/old/a', 'a'),
    file('opt/old/b', 'b'),
    dir('var/'),
    file('var/x', 'x'),
  ],
  [whiteout('etc/gone.txt'), dir('opt/old/'), opaque('opt/old'), file('opt/old/c', 'c'), file('var/x', 'x2'), dir('usr/'), dir('usr/bin/'), file('usr/bin/tool', '#!/bin/sh\n', { mode: 0o755, uid: 1000, gid: 1001 })],
  [whiteout('var')],
];

/** The tree LAYERED leaves, as one layer. */
const FLAT: readonly Entry[] = [
  dir('etc/'),
  file('etc/keep.txt', 'keep\n'),
  dir('opt/'),
  dir('opt/old/'),
  file('opt/old/c', 'c'),
  dir('usr/'),
  dir('usr/bin/'),
  file('usr/bin/tool', '#!/bin/sh\n', { mode: 0o755, uid: 1000, gid: 1001 }),
];

/** The same tree in two layers split another way (and written in another order). */
const SPLIT: readonly (readonly Entry[])[] = [
  [dir('usr/'), dir('usr/bin/'), file('usr/bin/tool', 'placeholder'), dir('opt/'), dir('opt/old/'), file('opt/old/zzz', 'removed below')],
  [file('usr/bin/tool', '#!/bin/sh\n', { mode: 0o755, uid: 1000, gid: 1001 }), whiteout('opt/old/zzz'), file('opt/old/c', 'c'), dir('etc/'), file('etc/keep.txt', 'keep\n')],
];

let registry: TestRegistry;
let pool: RegistryClientPool;
let scratch: { path: string; remove: () => Promise<void> };
let layeredRef: string;
let busybox: CraftedImage;
let busyboxRef: string;
let onBusyboxRef: string;
let counter = 0;

const workDir = (): string => join(scratch.path, `work-${counter++}`);

async function squash(reference: string, options: { aboveBase?: string; platform?: { os: string; architecture: string } } = {}): Promise<SquashResult> {
  const dir = workDir();
  await mkdir(dir, { recursive: true });
  return await createSubassembly(reference, { registries: pool, workDir: dir, ...options });
}

async function entryNames(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const { header } of readTar(decompress(createReadStream(path)))) names.push(`${header.type} ${header.name} ${header.uid}:${header.gid}`);
  return names;
}

beforeAll(async () => {
  registry = await startRegistry();
  pool = new RegistryClientPool();
  scratch = await tempDir('stevedore-squash-test-');
  layeredRef = await pushTo(pool, await craftImage(LAYERED), registry.host, 'squash/layered', 'v1');
  const bb = await makeBusyboxImage({ dir: join(scratch.path, 'busybox'), platform: { os: 'linux', architecture: 'amd64' } });
  busybox = { store: await OciLayout.open(bb.dir), descriptor: bb.descriptor, layers: [bb.layer], diffIds: [bb.diffId] };
  busyboxRef = await pushTo(pool, busybox, registry.host, 'squash/busybox', 'latest');
  onBusyboxRef = await pushTo(pool, await craftImage(LAYERED, { base: busybox }), registry.host, 'squash/on-busybox', 'v1');
}, 60_000);

afterAll(async () => {
  await pool?.close();
  await registry?.stop();
  await scratch?.remove();
});

describe('createSubassembly', () => {
  it('gives the same file, digest and manifest bytes every time', async () => {
    const first = await squash(layeredRef);
    const second = await squash(layeredRef);
    expect(second.layer).toEqual(first.layer);
    expect(second.diffId).toBe(first.diffId);
    expect(Buffer.from(encodeSubassemblyManifest(second.manifest))).toEqual(Buffer.from(encodeSubassemblyManifest(first.manifest)));
    expect(sha256(await readFile(first.file))).toBe(first.layer.digest);
  });

  it('gives the same digest for different layerings of the same tree', async () => {
    const flatRef = await pushTo(pool, await craftImage([FLAT]), registry.host, 'squash/flat', 'v1');
    const splitRef = await pushTo(pool, await craftImage(SPLIT), registry.host, 'squash/split', 'v1');
    const layered = await squash(layeredRef);
    const flat = await squash(flatRef);
    const split = await squash(splitRef);
    expect(flat.manifest.file).toEqual(layered.manifest.file);
    expect(split.manifest.file).toEqual(layered.manifest.file);
  });

  it('resolves whiteouts and opaque directories, writing none', async () => {
    const result = await squash(layeredRef);
    expect(await entryNames(result.file)).toEqual([
      'directory etc/ 0:0',
      'file etc/keep.txt 0:0',
      'directory opt/ 0:0',
      'directory opt/old/ 0:0',
      'file opt/old/c 0:0',
      'directory usr/ 0:0',
      'directory usr/bin/ 0:0',
      'file usr/bin/tool 1000:1001',
    ]);
  });

  it('describes the source, the file, the consumer config and the requirements', async () => {
    const result = await squash(layeredRef);
    const source = await resolveSquashSource(layeredRef, { registries: pool });
    expect(result.manifest).toEqual({
      mediaType: SUBASSEMBLY_MANIFEST_MEDIA_TYPE,
      source: { reference: formatReference(parseReference(layeredRef)), digest: source.image.descriptor.digest, platform: 'linux/amd64' },
      file: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: result.layer.digest, size: result.layer.size, diffId: result.diffId },
      config: { Env: ['PATH=/usr/bin:/bin', 'APP=1'], Cmd: ['/bin/sh'], WorkingDir: '/opt', User: '1000:1001' },
      requirements: { os: 'linux', architecture: 'amd64', paths: ['/etc', '/opt', '/usr'], uids: [0, 1000], gids: [0, 1001] },
    });
    // Keys sorted at every level: the bytes are a function of the content.
    const json = new TextDecoder().decode(encodeSubassemblyManifest(result.manifest));
    expect(json.indexOf('"config"')).toBeLessThan(json.indexOf('"file"'));
    expect(json.indexOf('"file"')).toBeLessThan(json.indexOf('"mediaType":"application/vnd.stevedore'));
  });

  it('unpacks (umoci) to the same tree as the source image', async () => {
    const result = await squash(onBusyboxRef);
    const source = await resolveSquashSource(onBusyboxRef, { registries: pool });
    const sourceLayout = await OciLayout.open(join(scratch.path, 'source-layout'), { create: true });
    await copyGraph(source.store, sourceLayout, source.image.descriptor);
    await sourceLayout.tag(source.image.descriptor, 'src');
    const squashedLayout = await OciLayout.open(join(scratch.path, 'squashed-layout'), { create: true });
    const image = squashedImage(result, source.image);
    const manifest = await pushSquashedImage(squashedLayout, image, result);
    await squashedLayout.tag(manifest, 'squashed');
    await validateImage(squashedLayout, manifest);
    expect(image.layers).toHaveLength(1);

    const expected = await describeTree(await umociUnpack(sourceLayout.dir, 'src', join(scratch.path, 'bundle-source')));
    const actual = await describeTree(await umociUnpack(squashedLayout.dir, 'squashed', join(scratch.path, 'bundle-squashed')));
    expect(actual).toEqual(expected);
    expect(actual).toContain('f usr/bin/tool 755 1000:1001 10 ' + sha256('#!/bin/sh\n'));
    expect(actual.some((line) => line.includes('.wh.') || line.startsWith('d var'))).toBe(false);
    expect(result.manifest.requirements.paths).toEqual(['/bin', '/etc', '/opt', '/root', '/tmp', '/usr']);
  }, 60_000);

  it('takes the linux/amd64 child of an index, or the platform asked for', async () => {
    const amd64 = await craftImage([[file('arch', 'amd64')]]);
    const arm64 = await craftImage([[file('arch', 'arm64')]], { platform: { os: 'linux', architecture: 'arm64' } });
    const index = await craftIndex([
      { image: arm64, platform: { os: 'linux', architecture: 'arm64' } },
      { image: amd64, platform: { os: 'linux', architecture: 'amd64' } },
    ]);
    const ref = await pushTo(pool, index, registry.host, 'squash/multi', 'v1');
    const byDefault = await squash(ref);
    expect(byDefault.manifest.source).toMatchObject({ digest: amd64.descriptor.digest, platform: 'linux/amd64' });
    const asked = await squash(ref, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(asked.manifest.source).toMatchObject({ digest: arm64.descriptor.digest, platform: 'linux/arm64' });
    expect(asked.manifest.requirements.architecture).toBe('arm64');
    const missing = await squash(ref, { platform: { os: 'linux', architecture: 's390x' } }).catch((err: unknown) => err);
    expect(missing).toBeInstanceOf(SubassemblyError);
    expect((missing as SubassemblyError).code).toBe('NOT_FOUND');
  });

  it('squashes only what an image adds above a base whose layers it starts with', async () => {
    const result = await squash(onBusyboxRef, { aboveBase: busyboxRef });
    expect(result.keptLayers).toBe(1);
    // What LAYERED adds, plus the markers that still act on a base: what it deleted (it cannot
    // know the base has none of them) and the directory it made opaque.
    expect(await entryNames(result.file)).toEqual([
      'file .wh.var 0:0',
      'directory etc/ 0:0',
      'file etc/.wh.gone.txt 0:0',
      'file etc/keep.txt 0:0',
      'directory opt/ 0:0',
      'directory opt/old/ 0:0',
      'file opt/old/.wh..wh..opq 0:0',
      'file opt/old/c 0:0',
      'directory usr/ 0:0',
      'directory usr/bin/ 0:0',
      'file usr/bin/tool 1000:1001',
    ]);
    expect(result.manifest.requirements.paths).toEqual(['/etc', '/opt', '/usr']);

    const err = await squash(busyboxRef, { aboveBase: layeredRef }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubassemblyError);
    expect((err as SubassemblyError).code).toBe('INVALID_REFERENCE');
    expect((err as Error).message).toMatch(/is not a base of .*squash\/busybox/);
  });

  it('can write zstd', async () => {
    const dir = workDir();
    await mkdir(dir, { recursive: true });
    const result = await createSubassembly(layeredRef, { registries: pool, workDir: dir, compression: 'zstd' });
    expect(result.manifest.file.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(result.diffId).toBe((await squash(layeredRef)).diffId);
  });
});

describe('createSubassembly errors', () => {
  const codeOf = async (promise: Promise<unknown>): Promise<string> => {
    const err = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SubassemblyError);
    return (err as SubassemblyError).code;
  };

  it('INVALID_REFERENCE for a malformed reference, NOT_FOUND for a missing image', async () => {
    expect(await codeOf(squash('Not A//Reference'))).toBe('INVALID_REFERENCE');
    expect(await codeOf(squash(`${registry.host}/squash/layered:no-such-tag`))).toBe('NOT_FOUND');
    expect(await codeOf(squash(`${registry.host}/squash/never-pushed@sha256:${'0'.repeat(64)}`))).toBe('NOT_FOUND');
  });

  it('UNAUTHENTICATED when the registry refuses, UNAVAILABLE when it fails', async () => {
    const secured = await startRegistry({ auth: 'basic' });
    let proxy: FaultProxy | undefined;
    const anonymous = new RegistryClientPool({ retryPolicy: noRetryPolicy });
    try {
      const dir = workDir();
      expect(await codeOf(createSubassembly(`${secured.host}/any/image:1`, { registries: anonymous, workDir: dir }))).toBe('UNAUTHENTICATED');
      proxy = await startFaultProxy(registry.url, [{ path: /\/manifests\//, times: 10, action: { kind: 'status', status: 503 } }]);
      const ref = layeredRef.replace(registry.host, proxy.host);
      expect(await codeOf(createSubassembly(ref, { registries: anonymous, workDir: dir }))).toBe('UNAVAILABLE');
    } finally {
      await anonymous.close();
      await proxy?.stop();
      await secured.stop();
    }
  });

  it('UNAVAILABLE when a layer does not match the diffID its config names', async () => {
    const ref = await pushTo(pool, await craftImage([[file('a', 'a')]], { wrongDiffIds: true }), registry.host, 'squash/liar', 'v1');
    const err = await squash(ref).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubassemblyError);
    expect((err as SubassemblyError).code).toBe('UNAVAILABLE');
    expect((err as Error).message).toMatch(/uncompressed.*digest mismatch/);
  });
});
