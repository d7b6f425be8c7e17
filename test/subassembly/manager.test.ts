import { readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { validateImage } from '../../src/layers/index.js';
import { DEFAULT_PLATFORM, OciLayout, copyGraph, digestHex, loadImage, type Digest, type MemoryStore } from '../../src/oci/index.js';
import { RegistryClientPool } from '../../src/registry/index.js';
import {
  SUBASSEMBLY_MANIFEST_MEDIA_TYPE,
  SubassemblyDirectory,
  SubassemblyError,
  SubassemblyManager,
  resolveSquashSource,
  subassemblyManifestSchema,
  type SubassemblyManagerOptions,
  type SubassemblyStatus,
} from '../../src/subassembly/index.js';
import { run, startFaultProxy, startRegistry, tempDir, type TestRegistry } from '../harness/index.js';
import { craftImage, describeTree, dir, file, opaque, pushTo, sha256, umociUnpack, waitFor, whiteout, type CraftedImage } from './helpers.js';

let registry: TestRegistry;
let pool: RegistryClientPool;
let scratch: { path: string; remove: () => Promise<void> };
const managers: SubassemblyManager[] = [];
let counter = 0;

/** A fresh image in the test registry (distinct content per call, so every test starts from nothing). */
async function pushImageWithStore(name = `app${counter++}`): Promise<{ ref: string; repository: string; image: CraftedImage & { readonly store: MemoryStore } }> {
  const image = await craftImage([
    [dir('etc/'), file('etc/os-release', `ID=${name}\n`), file('etc/old', 'old'), dir('srv/'), file('srv/a', 'a')],
    [whiteout('etc/old'), dir('srv/'), opaque('srv'), file('srv/b', name, { uid: 33, gid: 33 })],
  ]);
  const repository = `sub/${name}`;
  return { ref: await pushTo(pool, image, registry.host, repository, 'v1'), repository, image };
}

async function pushImage(): Promise<string> {
  return (await pushImageWithStore()).ref;
}

async function openManager(options: Partial<SubassemblyManagerOptions> = {}): Promise<SubassemblyManager> {
  const manager = await SubassemblyManager.open({
    registries: pool,
    directory: join(scratch.path, 'store'),
    workDir: join(scratch.path, 'work'),
    urlFor: (digest) => `http://downloads.test/subassemblies/${digest}`,
    ...options,
  });
  managers.push(manager);
  return manager;
}

const settled = (status: SubassemblyStatus): boolean => status.phase !== 'CREATING';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SubassemblyError);
  return (err as SubassemblyError).code;
}

async function bytesOf(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

beforeAll(async () => {
  registry = await startRegistry();
  pool = new RegistryClientPool();
  scratch = await tempDir('stevedore-subassembly-manager-');
}, 30_000);

afterEach(async () => {
  for (const manager of managers.splice(0)) await manager.close(5_000);
});

afterAll(async () => {
  await pool?.close();
  await registry?.stop();
  await scratch?.remove();
});

describe('SubassemblyManager', () => {
  it('goes CREATING → AVAILABLE with the file digest, the URL and the manifest', async () => {
    const ref = await pushImage();
    const manager = await openManager();
    const created = await manager.create(ref);
    expect(created.phase).toBe('CREATING');
    expect(created.digest).toBeUndefined();
    const status = await waitFor(() => manager.get(ref), settled);
    expect(status.phase, status.message).toBe('AVAILABLE');
    const digest = status.digest!;
    expect(status.url).toBe(`http://downloads.test/subassemblies/${digest}`);
    const manifest = subassemblyManifestSchema.parse(JSON.parse(new TextDecoder().decode(status.manifest!)));
    expect(manifest.mediaType).toBe(SUBASSEMBLY_MANIFEST_MEDIA_TYPE);
    expect(manifest.file.digest).toBe(digest);
    expect(manifest.requirements).toMatchObject({ paths: ['/etc', '/srv'], uids: [0, 33], gids: [0, 33] });
    const source = await resolveSquashSource(ref, { registries: pool });
    expect(manifest.source.digest).toBe(source.image.descriptor.digest);

    const whole = await manager.openFile(digest);
    expect(whole).toBeDefined();
    const bytes = await bytesOf(whole!.stream);
    expect(whole!.size).toBe(bytes.length);
    expect(manifest.file.size).toBe(bytes.length);
    expect(sha256(bytes)).toBe(digest);
  });

  it('serves byte ranges of a stored file, and nothing for an unknown digest', async () => {
    const ref = await pushImage();
    const manager = await openManager();
    await manager.create(ref);
    const status = await waitFor(() => manager.get(ref), settled);
    const digest = status.digest!;
    const whole = await bytesOf((await manager.openFile(digest))!.stream);
    const middle = await manager.openFile(digest, { start: 10, end: 99 });
    expect(middle!.size).toBe(whole.length);
    expect(await bytesOf(middle!.stream)).toEqual(whole.subarray(10, 100));
    const tail = await manager.openFile(digest, { start: whole.length - 5, end: whole.length + 1000 });
    expect(await bytesOf(tail!.stream)).toEqual(whole.subarray(whole.length - 5));
    await expect(manager.openFile(digest, { start: whole.length, end: whole.length + 1 })).rejects.toThrow(RangeError);
    expect(await manager.openFile(`sha256:${'1'.repeat(64)}` as Digest)).toBeUndefined();
  });

  it('is idempotent by source digest: a second create starts nothing, concurrent creates share one job', async () => {
    const ref = await pushImage();
    const proxy = await startFaultProxy(registry.url);
    try {
      const viaProxy = ref.replace(registry.host, proxy.host);
      const manager = await openManager();
      const statuses = await Promise.all(Array.from({ length: 6 }, () => manager.create(viaProxy)));
      expect(statuses.map((s) => s.phase)).toEqual(Array(6).fill('CREATING'));
      const done = await waitFor(() => manager.get(viaProxy), settled);
      expect(done.phase, done.message).toBe('AVAILABLE');
      // Each layer blob was pulled once: one job ran.
      const blobGets = proxy.log.filter((e) => e.method === 'GET' && e.path.includes('/blobs/'));
      const layerGets = new Map<string, number>();
      for (const e of blobGets) layerGets.set(e.path, (layerGets.get(e.path) ?? 0) + 1);
      expect([...layerGets.values()].filter((n) => n > 1)).toEqual([]);
      expect(layerGets.size).toBe(3); // two layers and the config
      const before = proxy.log.length;
      const again = await manager.create(viaProxy);
      expect(again.phase).toBe('AVAILABLE');
      expect(again.digest).toBe(done.digest);
      expect(proxy.log.slice(before).filter((e) => e.path.includes('/blobs/'))).toEqual([]);
      // The same image by another name (its digest) is the same subassembly.
      const source = await resolveSquashSource(ref, { registries: pool });
      const byDigest = await manager.create(`${registry.host}/${ref.split('/').slice(1).join('/').replace(/:v1$/, '')}@${source.image.descriptor.digest}`);
      expect(byDigest).toMatchObject({ phase: 'AVAILABLE', digest: done.digest });
    } finally {
      await proxy.stop();
    }
  });

  it('NOT_FOUND for an image never created or missing, INVALID_REFERENCE for a bad reference', async () => {
    const ref = await pushImage();
    const manager = await openManager();
    expect(await codeOf(manager.get(ref))).toBe('NOT_FOUND');
    expect(await codeOf(manager.get(`${registry.host}/sub/nothing:here`))).toBe('NOT_FOUND');
    expect(await codeOf(manager.create(`${registry.host}/sub/nothing:here`))).toBe('NOT_FOUND');
    expect(await codeOf(manager.create(`${registry.host}/Upper/Case:v1`))).toBe('INVALID_REFERENCE');
    expect(await codeOf(manager.get('bad reference'))).toBe('INVALID_REFERENCE');
  });

  it('reports UNAVAILABLE with the failure when a job fails, and retries on the next create', async () => {
    const { ref, repository, image } = await pushImageWithStore();
    const layer = image.layers[0]!;
    // The registry loses a layer: the manifest still resolves, the pull fails.
    const deleted = await fetch(`${registry.url}/v2/${repository}/blobs/${layer.digest}`, { method: 'DELETE' });
    expect(deleted.status).toBe(202);
    const manager = await openManager();
    expect((await manager.create(ref)).phase).toBe('CREATING');
    const failed = await waitFor(() => manager.get(ref), settled);
    expect(failed.phase).toBe('UNAVAILABLE');
    expect(failed.message).toContain(layer.digest);
    expect(failed.digest).toBeUndefined();
    expect(failed.manifest).toBeUndefined();

    // The blob is back: a new create is a new attempt.
    await copyGraph(image.store, pool.repository({ registry: registry.host, repository }), layer);
    expect((await manager.create(ref)).phase).toBe('CREATING');
    expect((await waitFor(() => manager.get(ref), settled)).phase).toBe('AVAILABLE');
  });

  it('after a restart: AVAILABLE for what is stored and verifies, never for a damaged or interrupted one', async () => {
    const store = join(scratch.path, 'restart-store');
    const done = await pushImage();
    const damaged = await pushImage();
    const interrupted = await pushImage();
    const first = await openManager({ directory: store });
    await first.create(done);
    await first.create(damaged);
    const doneStatus = await waitFor(() => first.get(done), settled);
    const damagedStatus = await waitFor(() => first.get(damaged), settled);
    expect([doneStatus.phase, damagedStatus.phase]).toEqual(['AVAILABLE', 'AVAILABLE']);
    await first.close();

    // What a crash leaves: a job recorded as CREATING, and a file cut short behind our back.
    const directory = await SubassemblyDirectory.open(store);
    const source = await resolveSquashSource(interrupted, { registries: pool });
    await directory.writeRecord({ phase: 'CREATING', message: 'squashing', sourceDigest: source.image.descriptor.digest, reference: source.reference });
    const damagedFile = directory.filePath(damagedStatus.digest!);
    await truncate(damagedFile, 100);

    const second = await openManager({ directory: store });
    const after = await second.get(done);
    expect(after).toEqual(doneStatus);
    const lost = await second.get(damaged);
    expect(lost.phase).toBe('UNAVAILABLE');
    expect(lost.message).toMatch(/damaged/);
    expect(await second.openFile(damagedStatus.digest!)).toBeUndefined();
    const stopped = await second.get(interrupted);
    expect(stopped.phase).toBe('UNAVAILABLE');
    expect(stopped.message).toMatch(/interrupted/);

    // Creating again repairs both.
    await second.create(damaged);
    await second.create(interrupted);
    expect(await waitFor(() => second.get(damaged), settled)).toEqual(damagedStatus);
    expect((await waitFor(() => second.get(interrupted), settled)).phase).toBe('AVAILABLE');
    expect(sha256(await readFile(damagedFile))).toBe(damagedStatus.digest);
  });

  it('pushes each subassembly as a pullable one-layer image, blob URL as its url', async () => {
    const ref = await pushImage();
    const manager = await openManager({ directory: undefined, urlFor: undefined, repository: `${registry.host}/subassemblies` });
    await manager.create(ref);
    const status = await waitFor(() => manager.get(ref), settled);
    expect(status.phase, status.message).toBe('AVAILABLE');
    const digest = status.digest!;
    expect(status.url).toBe(`${registry.url}/v2/subassemblies/blobs/${digest}`);
    const served = Buffer.from(await (await fetch(status.url!)).arrayBuffer());
    expect(sha256(served)).toBe(digest);
    expect(await manager.openFile(digest)).toBeUndefined();

    const source = await resolveSquashSource(ref, { registries: pool });
    const tag = digestHex(source.image.descriptor.digest);
    const repo = pool.repository({ registry: registry.host, repository: 'subassemblies' });
    const pushed = await repo.resolve(tag);
    await validateImage(repo, pushed);
    const inspect = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/subassemblies:${tag}`])).stdout) as {
      Layers: string[];
      Env: string[];
      Os: string;
      Architecture: string;
    };
    expect(inspect).toMatchObject({ Layers: [digest], Env: ['PATH=/usr/bin:/bin', 'APP=1'], Os: 'linux', Architecture: 'amd64' });
    const loaded = await loadImage(repo, pushed, { platform: DEFAULT_PLATFORM });
    expect(loaded.manifest.value.layers.map((l) => l.digest)).toEqual([digest]);
    expect(loaded.config.value.rootfs.diff_ids).toEqual([JSON.parse(new TextDecoder().decode(status.manifest!)).file.diffId]);
    expect(loaded.config.value.config).toEqual({ Env: ['PATH=/usr/bin:/bin', 'APP=1'], Cmd: ['/bin/sh'], WorkingDir: '/opt', User: '1000:1001' });

    const layout = join(scratch.path, 'pulled');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.host}/subassemblies:${tag}`, `oci:${layout}:pulled`]);
    const tree = await describeTree(await umociUnpack(layout, 'pulled', join(scratch.path, 'pulled-bundle')));
    expect(tree).toEqual([
      'd etc 755 0:0',
      expect.stringMatching(/^f etc\/os-release 644 0:0 /),
      'd srv 755 0:0',
      expect.stringMatching(/^f srv\/b 644 33:33 /),
    ]);
    await OciLayout.open(layout);
  });

  it('stores in both: the directory URL wins, the registry holds the image too', async () => {
    const ref = await pushImage();
    const manager = await openManager({ directory: join(scratch.path, 'both'), repository: `${registry.host}/both` });
    await manager.create(ref);
    const status = await waitFor(() => manager.get(ref), settled);
    expect(status.phase, status.message).toBe('AVAILABLE');
    expect(status.url).toBe(`http://downloads.test/subassemblies/${status.digest!}`);
    const source = await resolveSquashSource(ref, { registries: pool });
    const pushed = await pool.repository({ registry: registry.host, repository: 'both' }).resolve(digestHex(source.image.descriptor.digest));
    expect(pushed.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  it('close() cancels a job still running after the grace period; it is UNAVAILABLE, also after a restart', async () => {
    const ref = await pushImage();
    const proxy = await startFaultProxy(registry.url, [{ method: 'GET', path: /\/blobs\//, times: 10, action: { kind: 'delay', ms: 60_000 } }]);
    try {
      const viaProxy = ref.replace(registry.host, proxy.host);
      const store = join(scratch.path, 'cancel-store');
      const manager = await openManager({ directory: store });
      expect((await manager.create(viaProxy)).phase).toBe('CREATING');
      // The job is pulling (slowly) when the manager closes.
      await waitFor(async () => proxy.log.some((e) => e.path.includes('/blobs/')), Boolean);
      await manager.close(50);
      const status = await manager.get(viaProxy);
      expect(status.phase).toBe('UNAVAILABLE');
      expect(status.message).toMatch(/cancelled/);
      const reopened = await openManager({ directory: store });
      expect((await reopened.get(viaProxy)).phase).toBe('UNAVAILABLE');
    } finally {
      await proxy.stop();
    }
  });

  it('needs somewhere to store', async () => {
    await expect(SubassemblyManager.open({ registries: pool, workDir: join(scratch.path, 'work') })).rejects.toThrow(/directory, a repository/);
    await expect(SubassemblyManager.open({ registries: pool, workDir: join(scratch.path, 'work'), repository: `${registry.host}/repo:tag` })).rejects.toThrow(/without tag or digest/);
  });

  it('refuses work once closed', async () => {
    const ref = await pushImage();
    const manager = await openManager();
    await manager.close();
    expect(await codeOf(manager.create(ref))).toBe('UNAVAILABLE');
  });
});
