import { readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousCredentials, resolveReference } from '../../src/registry/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../fixtures/make-busybox.js';
import { run, startRegistry, tempDir, type TestRegistry } from '../harness/index.js';

let registry: TestRegistry;
let dir: { path: string; remove: () => Promise<void> };

beforeAll(async () => {
  registry = await startRegistry();
  dir = await tempDir('stevedore-busybox-');
});

afterAll(async () => {
  await registry?.stop();
  await dir?.remove();
});

describe('the busybox base image fixture', () => {
  it('is deterministic, pushes to a registry, and its rootfs runs', async () => {
    const first = await makeBusyboxImage({ dir: join(dir.path, 'a') });
    const second = await makeBusyboxImage({ dir: join(dir.path, 'b') });
    expect(second.descriptor.digest).toBe(first.descriptor.digest);
    expect((await makeBusyboxImage({ dir: join(dir.path, 'c'), epoch: 1_700_000_000 })).descriptor.digest).not.toBe(first.descriptor.digest);

    const pushed = await pushBusyboxImage(first, `${registry.host}/base/busybox:latest`, { credentials: anonymousCredentials });
    expect(pushed.digest).toBe(first.descriptor.digest);
    const resolved = await resolveReference(`${registry.host}/base/busybox`, { clientOptions: { credentials: anonymousCredentials } });
    expect(resolved.descriptor.digest).toBe(first.descriptor.digest);
    expect(resolved.manifest.value.layers).toEqual([first.layer]);

    // The outside view: umoci unpacks the layout, and the rootfs works under chroot.
    const bundle = join(dir.path, 'bundle');
    await run('umoci', ['unpack', '--image', `${first.dir}:latest`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    expect(await readlink(join(rootfs, 'bin', 'sh'))).toBe('busybox');
    expect((await stat(join(rootfs, 'tmp'))).mode & 0o7777).toBe(0o1777);
    const { stdout } = await run('chroot', [rootfs, '/bin/sh', '-c', 'echo hello; id -un; ls /etc']);
    expect(stdout).toBe('hello\nroot\ngroup\npasswd\n');
  });
});
