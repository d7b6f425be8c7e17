import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateImage } from '../../src/layers/index.js';
import { DEFAULT_PLATFORM, OciLayout, loadImage } from '../../src/oci/index.js';
import { RegistryClientPool } from '../../src/registry/index.js';
import { stevedore } from '../cli/helpers.js';
import { makeBusyboxImage } from '../fixtures/make-busybox.js';
import { run, startRegistry, tempDir, type TestRegistry } from '../harness/index.js';
import { craftImage, describeTree, dir, file, opaque, pushTo, sha256, umociUnpack, whiteout, type CraftedImage } from './helpers.js';

let registry: TestRegistry;
let pool: RegistryClientPool;
let scratch: { path: string; remove: () => Promise<void> };
let busyboxRef: string;
let appRef: string;

/** `stevedore squash ARGS`, in-process. */
async function squash(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return stevedore(['squash', ...args], { cwd: scratch.path });
}

beforeAll(async () => {
  registry = await startRegistry();
  pool = new RegistryClientPool();
  scratch = await tempDir('stevedore-squash-cli-');
  const bb = await makeBusyboxImage({ dir: join(scratch.path, 'busybox'), platform: DEFAULT_PLATFORM });
  const busybox: CraftedImage = { store: await OciLayout.open(bb.dir), descriptor: bb.descriptor, layers: [bb.layer], diffIds: [bb.diffId] };
  busyboxRef = await pushTo(pool, busybox, registry.host, 'cli/busybox', 'latest');
  const app = await craftImage(
    [
      [dir('srv/'), file('srv/app', 'v1'), file('srv/old', 'old'), dir('etc/'), file('etc/motd', 'hello')],
      [whiteout('srv/old'), file('srv/app', 'v2', { uid: 1000, gid: 1000 })],
      [dir('etc/'), opaque('etc'), file('etc/hostname', 'app')],
    ],
    { base: busybox },
  );
  appRef = await pushTo(pool, app, registry.host, 'cli/app', 'v1');
}, 60_000);

afterAll(async () => {
  await pool?.close();
  await registry?.stop();
  await scratch?.remove();
});

describe('stevedore squash', () => {
  it('squashes a registry image into a one-layer image in a layout, deterministically', async () => {
    const first = await squash([appRef, 'oci:out-a:squashed']);
    expect(first.code, first.stderr).toBe(0);
    const digest = first.stdout.trim();
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const layout = await OciLayout.open(join(scratch.path, 'out-a'));
    const desc = await layout.resolve('squashed');
    expect(desc.digest).toBe(digest);
    await validateImage(layout, desc);
    const image = await loadImage(layout, desc, { platform: DEFAULT_PLATFORM });
    expect(image.manifest.value.layers).toHaveLength(1);
    // The whole config is kept, only the layers change.
    expect(image.config.value.config).toMatchObject({ Env: ['PATH=/usr/bin:/bin', 'APP=1'], Cmd: ['/bin/sh'], Labels: { keep: 'me' } });
    expect(image.config.value.history).toHaveLength(1);

    const second = await squash([appRef, 'oci:out-b']);
    expect(second.stdout.trim()).toBe(digest);

    const source = join(scratch.path, 'source');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${appRef}`, `oci:${source}:src`]);
    const expected = await describeTree(await umociUnpack(source, 'src', join(scratch.path, 'bundle-src')));
    const actual = await describeTree(await umociUnpack(layout.dir, 'squashed', join(scratch.path, 'bundle-a')));
    expect(actual).toEqual(expected);
    expect(actual).toContain(`f etc/hostname 644 0:0 3 ${sha256('app')}`);
    expect(actual.filter((l) => l.startsWith('f etc/'))).toEqual([expect.stringMatching(/^f etc\/hostname /)]);
  }, 60_000);

  it('squashes a layout image to a registry', async () => {
    await squash([appRef, 'oci:from-layout:app']);
    const result = await squash(['oci:from-layout:app', `${registry.host}/cli/pushed:squashed`, '--compression', 'zstd']);
    expect(result.code, result.stderr).toBe(0);
    const repo = pool.repository({ registry: registry.host, repository: 'cli/pushed' });
    const desc = await repo.resolve('squashed');
    expect(desc.digest).toBe(result.stdout.trim());
    await validateImage(repo, desc);
    const inspect = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/cli/pushed:squashed`])).stdout) as { Layers: string[] };
    expect(inspect.Layers).toHaveLength(1);
    const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/cli/pushed:squashed`])).stdout) as { layers: { mediaType: string }[] };
    expect(raw.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+zstd']);
  });

  it('--above-base keeps the base layers and squashes what the image adds', async () => {
    const result = await squash([appRef, `${registry.host}/cli/above:v1`, '--above-base', busyboxRef]);
    expect(result.code, result.stderr).toBe(0);
    const repo = pool.repository({ registry: registry.host, repository: 'cli/above' });
    const desc = await repo.resolve('v1');
    await validateImage(repo, desc);
    const image = await loadImage(repo, desc, { platform: DEFAULT_PLATFORM });
    const base = await loadImage(pool.repository({ registry: registry.host, repository: 'cli/busybox' }), await pool.repository({ registry: registry.host, repository: 'cli/busybox' }).resolve('latest'), { platform: DEFAULT_PLATFORM });
    expect(image.manifest.value.layers).toHaveLength(2);
    expect(image.manifest.value.layers[0]!.digest).toBe(base.manifest.value.layers[0]!.digest);
    expect(image.config.value.rootfs.diff_ids[0]).toBe(base.config.value.rootfs.diff_ids[0]);
    expect(image.config.value.history?.map((h) => h.created_by)).toEqual([base.config.value.history![0]!.created_by, `stevedore squash ${appRef}`]);

    const layout = join(scratch.path, 'above-layout');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.host}/cli/above:v1`, `oci:${layout}:above`]);
    const source = join(scratch.path, 'above-source');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${appRef}`, `oci:${source}:src`]);
    expect(await describeTree(await umociUnpack(layout, 'above', join(scratch.path, 'bundle-above')))).toEqual(
      await describeTree(await umociUnpack(source, 'src', join(scratch.path, 'bundle-above-src'))),
    );
  }, 60_000);

  it('refuses a base the image does not start with, and leaves no layout behind', async () => {
    const result = await squash([busyboxRef, 'oci:never', '--above-base', appRef]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/INVALID_REFERENCE|does not start with|prefix/i);
    await expect(OciLayout.open(join(scratch.path, 'never'))).rejects.toThrow();
  });

  it('refuses bad arguments with a usage error', async () => {
    for (const [args, message] of [
      [[appRef], /takes a source/],
      [[appRef, 'oci:x', '--compression', 'lz4'], /--compression/],
      [[appRef, `${registry.host}/cli/x@sha256:${'a'.repeat(64)}`], /digest/],
    ] as const) {
      const result = await squash([...args]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});
