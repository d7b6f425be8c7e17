import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyGraph, MemoryStore, OciLayout, parseImageConfig, parseImageIndex, parseImageManifest, type Descriptor } from '../../src/oci/index.js';
import { anonymousCredentials, RegistryClient, resolveReference } from '../../src/registry/index.js';
import { diffIdOf, makeImage, makeIndex, readStream, run, sha256, startRegistry, storeOf, tempDir, type TestRegistry } from '../harness/index.js';

let registry: TestRegistry;
let work: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  registry = await startRegistry();
  work = await tempDir('stevedore-interop-');
});

afterAll(async () => {
  await registry?.stop();
  await work?.remove();
});

const skopeo = (...args: string[]): Promise<{ stdout: string }> => run('skopeo', ['--insecure-policy', ...args], { timeoutMs: 60_000 });

/** Reads a blob of an OCI layout directory. */
function layoutBlob(dir: string, digest: string): Promise<Buffer> {
  return readFile(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

describe('what Stevedore pushes, skopeo reads', () => {
  it('inspects and copies a single image, every blob identical', async () => {
    const client = new RegistryClient(registry.host, { credentials: anonymousCredentials });
    try {
      const image = await makeImage({ layers: [[{ name: 'f', content: randomBytes(40_000) }], [{ name: 'g', content: 'g' }]] });
      const repo = client.repository('interop/pushed');
      await copyGraph(await storeOf([image]), repo, image.descriptor);
      await repo.tag(image.descriptor, 'v1');

      const ref = `docker://${registry.host}/interop/pushed:v1`;
      const inspected = JSON.parse((await skopeo('inspect', '--tls-verify=false', ref)).stdout) as { Digest: string; Layers: string[] };
      expect(inspected.Digest).toBe(image.descriptor.digest);
      expect(inspected.Layers).toEqual(image.layers.map((l) => l.descriptor.digest));
      const raw = (await skopeo('inspect', '--raw', '--tls-verify=false', ref)).stdout;
      expect(raw).toBe(image.manifest.toString('utf8'));

      const dir = join(work.path, 'skopeo-pulled');
      await skopeo('copy', '--src-tls-verify=false', ref, `oci:${dir}:v1`);
      const index = parseImageIndex(await readFile(join(dir, 'index.json')));
      expect(index.value.manifests[0]?.digest).toBe(image.descriptor.digest);
      for (const [digest, bytes] of image.blobs) expect((await layoutBlob(dir, digest)).equals(bytes)).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('copies every platform of an index Stevedore pushed', async () => {
    const client = new RegistryClient(registry.host, { credentials: anonymousCredentials });
    try {
      const images = await Promise.all([{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }].map((platform) => makeImage({ platform })));
      const index = makeIndex(images);
      const repo = client.repository('interop/index');
      await copyGraph(await storeOf(images, index), repo, index.descriptor);
      await repo.tag(index.descriptor, 'multi');
      const dir = join(work.path, 'skopeo-index');
      await skopeo('copy', '--all', '--src-tls-verify=false', `docker://${registry.host}/interop/index:multi`, `oci:${dir}:multi`);
      const top = parseImageIndex(await readFile(join(dir, 'index.json')));
      expect(top.value.manifests[0]?.digest).toBe(index.descriptor.digest);
      for (const image of images) for (const [digest, bytes] of image.blobs) expect((await layoutBlob(dir, digest)).equals(bytes)).toBe(true);
    } finally {
      await client.close();
    }
  });
});

describe('what skopeo pushes, Stevedore pulls and verifies', () => {
  it('pulls an umoci-built image pushed by skopeo, into memory and into an OCI layout umoci unpacks', async () => {
    const layout = join(work.path, 'umoci-layout');
    const bundle = join(work.path, 'umoci-bundle');
    await run('umoci', ['init', '--layout', layout]);
    await run('umoci', ['new', '--image', `${layout}:base`]);
    await run('umoci', ['unpack', '--rootless', '--image', `${layout}:base`, bundle]);
    await mkdir(join(bundle, 'rootfs', 'etc'), { recursive: true });
    await writeFile(join(bundle, 'rootfs', 'etc', 'greeting'), 'hello from umoci\n');
    await writeFile(join(bundle, 'rootfs', 'payload.bin'), randomBytes(200_000));
    await run('umoci', ['repack', '--image', `${layout}:base`, bundle]);
    await run('umoci', ['config', '--image', `${layout}:base`, '--config.cmd', '/bin/true', '--tag', 'v1']);
    await skopeo('copy', '--dest-tls-verify=false', `oci:${layout}:v1`, `docker://${registry.host}/interop/umoci:v1`);

    const client = new RegistryClient(registry.host, { credentials: anonymousCredentials });
    try {
      const resolved = await resolveReference(`${registry.host}/interop/umoci:v1`, { registries: undefined, clientOptions: { credentials: anonymousCredentials } });
      const repo = client.repository('interop/umoci');
      const pulled = new MemoryStore();
      await copyGraph(repo, pulled, resolved.descriptor);
      // Verify the graph ourselves: config diffIDs against the uncompressed layers.
      const manifest = parseImageManifest(await readStream(await pulled.fetch(resolved.descriptor)), resolved.descriptor);
      const config = parseImageConfig(await readStream(await pulled.fetch(manifest.value.config)), manifest.value.config);
      expect(config.value.config?.Cmd).toEqual(['/bin/true']);
      const diffIds = await Promise.all(manifest.value.layers.map(async (l: Descriptor) => diffIdOf(await readStream(await pulled.fetch(l)))));
      expect(diffIds).toEqual(config.value.rootfs.diff_ids);

      // The same pull into an OCI layout that umoci itself can unpack.
      const target = join(work.path, 'stevedore-pulled');
      const out = await OciLayout.open(target, { create: true });
      await copyGraph(repo, out, resolved.descriptor);
      await out.tag(resolved.descriptor, 'v1');
      const unpacked = join(work.path, 'stevedore-unpacked');
      await run('umoci', ['unpack', '--rootless', '--image', `${target}:v1`, unpacked]);
      expect(await readFile(join(unpacked, 'rootfs', 'etc', 'greeting'), 'utf8')).toBe('hello from umoci\n');
      expect((await readdir(join(unpacked, 'rootfs'))).sort()).toContain('payload.bin');
      expect(sha256(await readFile(join(unpacked, 'rootfs', 'payload.bin')))).toBe(sha256(await readFile(join(bundle, 'rootfs', 'payload.bin'))));
    } finally {
      await client.close();
    }
  });
});
