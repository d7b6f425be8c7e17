import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anonymousCredentials, RegistryClient, validateImage } from '../../src/index.js';
import { makeBusyboxImage, pushBusyboxImage, type BusyboxImage } from '../fixtures/make-busybox.js';
import { startFaultProxy, startRegistry, tempDir, type FaultProxy, type TestRegistry } from '../harness/index.js';
import { stevedore } from './helpers.js';

describe('stevedore append with registry references', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let dir: { path: string; remove(): Promise<void> };
  let busybox: BusyboxImage;

  beforeAll(async () => {
    registry = await startRegistry({ auth: 'none' });
    // An empty fault plan: the proxy only records what the client asks for.
    proxy = await startFaultProxy(registry.url);
    dir = await tempDir('stevedore-append-registry-');
    busybox = await makeBusyboxImage({ dir: join(dir.path, 'busybox'), tag: 'latest' });
    await pushBusyboxImage(busybox, `${proxy.host}/library/busybox:1`, { credentials: anonymousCredentials });
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
    await dir?.remove();
  });

  it('pushes onto a base in the same registry without downloading the base layer', async () => {
    const app = join(dir.path, 'app');
    mkdirSync(join(app, 'srv'), { recursive: true });
    writeFileSync(join(app, 'srv/index.html'), '<h1>hi</h1>\n');
    proxy.setPlan([]);
    const r = await stevedore(['append', '--base', `${proxy.host}/library/busybox:1`, '--layer', app, '--output', `docker://${proxy.host}/team/web:v1`], {
      cwd: dir.path,
      env: { DOCKER_CONFIG: join(dir.path, 'no-docker-config') },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const digest = r.stdout.trim();

    const layerBlob = `/v2/library/busybox/blobs/${busybox.layer.digest}`;
    expect(proxy.log.filter((e) => e.method === 'GET' && e.path.startsWith(layerBlob))).toEqual([]);
    expect(proxy.log.some((e) => e.method === 'POST' && e.path.includes(`mount=${encodeURIComponent(busybox.layer.digest)}`))).toBe(true);

    const client = new RegistryClient(proxy.host, { credentials: anonymousCredentials });
    try {
      const repo = client.repository('team/web');
      const desc = await repo.resolve('v1');
      expect(desc.digest).toBe(digest);
      await validateImage(repo, desc);
    } finally {
      await client.close();
    }

    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/team/web:v1`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
    expect(inspect.Digest).toBe(digest);
    expect(inspect.Layers[0]).toBe(busybox.layer.digest);
    expect(inspect.Layers).toHaveLength(2);
  });

  it('fails with the registry error code and tags nothing when the base does not exist', async () => {
    const app = join(dir.path, 'app2');
    mkdirSync(app);
    const r = await stevedore(['append', '--base', `${proxy.host}/library/missing:1`, '--layer', app, '--output', `${proxy.host}/team/never:v1`], {
      cwd: dir.path,
      env: { DOCKER_CONFIG: join(dir.path, 'no-docker-config') },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/MANIFEST_UNKNOWN|NAME_UNKNOWN|not found/i);
    expect(proxy.log.some((e) => e.method === 'PUT' && e.path.includes('/team/never/manifests/'))).toBe(false);
  });
});
