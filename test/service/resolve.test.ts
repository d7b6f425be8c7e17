import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyGraph } from '../../src/oci/index.js';
import { RegistryClientPool } from '../../src/registry/index.js';
import { ImageBuilderService } from '../../src/service/index.js';
import { makeImage, makeIndex, startFaultProxy, storeOf, type FaultProxy } from '../harness/index.js';
import { collectText, collectUpdates, serviceErrorOf, startServiceSuite, type ServiceSuite } from './helpers.js';

// ResolveBaseImage (SPEC-gitpod.md §7, resolve_test.go and orchestrator_test.go cases) against
// real registries: a plain one, one with Basic auth, and a fault proxy answering 500.

let suite: ServiceSuite;
let secured: ServiceSuite;
let service: ImageBuilderService;
const b64 = (s: string): string => Buffer.from(s).toString('base64');

beforeAll(async () => {
  [suite, secured] = await Promise.all([startServiceSuite(), startServiceSuite({ auth: 'basic' })]);
  service = new ImageBuilderService({ config: suite.config(), httpBaseUrl: 'http://127.0.0.1:1' });
  await service.start();
});

afterAll(async () => {
  await service?.shutdown(0);
  await Promise.all([suite?.stop(), secured?.stop()]);
});

describe('resolveBaseImage', () => {
  it('resolves a tag to name@digest (tag dropped)', async () => {
    expect(await service.resolveBaseImage({ ref: suite.busybox })).toEqual({ ref: `${suite.registry.host}/busybox@${suite.busyboxDigest}` });
  });

  it('asks the registry for a digest too, and answers the same digest', async () => {
    const pinned = `${suite.registry.host}/busybox@${suite.busyboxDigest}`;
    expect(await service.resolveBaseImage({ ref: `${suite.registry.host}/busybox:ignored@${suite.busyboxDigest}` })).toEqual({ ref: pinned });
    const missing = await serviceErrorOf(service.resolveBaseImage({ ref: `${suite.registry.host}/busybox@sha256:${'1'.repeat(64)}` }));
    expect(missing.status).toBe('NOT_FOUND');
  });

  it('resolves an index to its FIRST linux/amd64 child; none → INTERNAL "no manifest for platform linux-amd64"', async () => {
    const arm = await makeImage({ platform: { os: 'linux', architecture: 'arm64' } });
    const amd1 = await makeImage({ platform: { os: 'linux', architecture: 'amd64' } });
    const amd2 = await makeImage({ platform: { os: 'linux', architecture: 'amd64', variant: 'v2' } });
    const index = makeIndex([arm, amd1, amd2]);
    const onlyArm = makeIndex([arm]);
    const pool = new RegistryClientPool();
    try {
      const repo = pool.repository({ registry: suite.registry.host, repository: 'multi' });
      await copyGraph(await storeOf([arm, amd1, amd2], index), repo, index.descriptor);
      await repo.tag(index.descriptor, 'latest');
      await copyGraph(await storeOf([arm], onlyArm), repo, onlyArm.descriptor);
      await repo.tag(onlyArm.descriptor, 'arm-only');
    } finally {
      await pool.close();
    }
    expect(await service.resolveBaseImage({ ref: `${suite.registry.host}/multi:latest` })).toEqual({ ref: `${suite.registry.host}/multi@${amd1.descriptor.digest}` });
    const err = await serviceErrorOf(service.resolveBaseImage({ ref: `${suite.registry.host}/multi:arm-only` }));
    expect(err.status).toBe('INTERNAL');
    expect(err.message).toContain('no manifest for platform linux-amd64');
  });

  it('a missing tag or repository → NOT_FOUND', async () => {
    expect((await serviceErrorOf(service.resolveBaseImage({ ref: `${suite.registry.host}/busybox:nope` }))).status).toBe('NOT_FOUND');
    expect((await serviceErrorOf(service.resolveBaseImage({ ref: `${suite.registry.host}/nothing/here:latest` }))).status).toBe('NOT_FOUND');
  });

  it('an unparseable reference → INVALID_ARGUMENT', async () => {
    const err = await serviceErrorOf(service.resolveBaseImage({ ref: 'UPPER/Case:tag' }));
    expect(err.status).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/^cannot resolve base image ref: /);
    expect((await serviceErrorOf(service.resolveBaseImage({ ref: '' }))).status).toBe('INVALID_ARGUMENT');
  });
});

describe('resolveBaseImage against a registry with Basic auth', () => {
  it('no credentials or wrong ones → UNAUTHENTICATED', async () => {
    const ref = secured.busybox;
    expect((await serviceErrorOf(service.resolveBaseImage({ ref }))).status).toBe('UNAUTHENTICATED');
    const wrong = await serviceErrorOf(service.resolveBaseImage({ ref, auth: { additional: { [secured.registry.host]: b64('stevedore:wrong-password') } } }));
    expect(wrong.status).toBe('UNAUTHENTICATED');
    expect(wrong.message).not.toContain('wrong-password');
  });

  it('the user\'s additional credentials work whatever the mode', async () => {
    const { username, password } = secured.registry.credentials!;
    const auth = { mode: { kind: 'total' as const, allowAll: false }, additional: { [secured.registry.host]: b64(`${username}:${password}`) } };
    expect(await service.resolveBaseImage({ ref: secured.busybox, auth })).toEqual({ ref: `${secured.registry.host}/busybox@${secured.busyboxDigest}` });
  });

  it('installation credentials (the pull secret) are used only for allowed hosts', async () => {
    const { username, password } = secured.registry.credentials!;
    const pullSecretFile = join(secured.dir, 'pull-secret.json');
    await writeFile(pullSecretFile, JSON.stringify({ auths: { [secured.registry.host]: { auth: b64(`${username}:${password}`) } } }));
    const withSecret = new ImageBuilderService({
      config: secured.config({}, { orchestrator: { baseImageRepository: `${secured.registry.host}/base-images`, workspaceImageRepository: `${secured.registry.host}/workspace-images`, pullSecretFile } }),
      httpBaseUrl: 'http://127.0.0.1:1',
    });
    try {
      const ref = secured.busybox;
      expect(await withSecret.resolveBaseImage({ ref, auth: { mode: { kind: 'total', allowAll: true } } })).toEqual({ ref: `${secured.registry.host}/busybox@${secured.busyboxDigest}` });
      expect(await withSecret.resolveBaseImage({ ref, auth: { mode: { kind: 'selective', allowBaseRepository: true, allowWorkspaceRepository: false, anyOf: [] } } })).toEqual({
        ref: `${secured.registry.host}/busybox@${secured.busyboxDigest}`,
      });
      expect((await serviceErrorOf(withSecret.resolveBaseImage({ ref }))).status).toBe('UNAUTHENTICATED');
    } finally {
      await withSecret.shutdown(0);
    }
  });
});

describe('builds against a registry with Basic auth', () => {
  it('pushes with the installation credentials; the request\'s auth decides about the base image', async () => {
    const { username, password } = secured.registry.credentials!;
    const pullSecretFile = join(secured.dir, 'pull-secret-builds.json');
    await writeFile(pullSecretFile, JSON.stringify({ auths: { [secured.registry.host]: { auth: b64(`${username}:${password}`) } } }));
    const builder = new ImageBuilderService({
      config: secured.config({}, { orchestrator: { baseImageRepository: `${secured.registry.host}/base-images`, workspaceImageRepository: `${secured.registry.host}/workspace-images`, pullSecretFile } }),
      httpBaseUrl: 'http://127.0.0.1:1',
    });
    try {
      const source = { kind: 'ref' as const, ref: secured.busybox };
      // Without an allowance the installation's credentials are not lent to the base image.
      expect((await serviceErrorOf(builder.build({ source }))).status).toBe('UNAUTHENTICATED');
      const updates = await collectUpdates(builder.build({ source, auth: { mode: { kind: 'selective', allowBaseRepository: false, allowWorkspaceRepository: false, anyOf: [secured.registry.host] } } }));
      const done = updates.at(-1)!;
      expect(done.status, done.message).toBe('done_success');
      expect((await builder.resolveWorkspaceImage({ source, auth: { mode: { kind: 'total', allowAll: true } } })).status).toBe('done_success');
      const log = await collectText(builder.logs({ buildId: done.info!.buildId }));
      expect(log).toContain('tagged the workspace image');
      expect(log).not.toContain(password);
    } finally {
      await builder.shutdown(0);
    }
  });
});

describe('use_retry_client (TestResolveBaseImageWithRetryClientHandlesTLSTimeout)', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(suite.registry.url);
  });
  afterAll(async () => {
    await proxy?.stop();
  });

  const failing = (times: number): void => proxy.setPlan([{ path: /\/manifests\//, times, action: { kind: 'status', status: 500 } }]);
  const ref = (): string => `${proxy.host}/busybox:latest`;

  it('off, no failures → ok; on, no failures → ok', async () => {
    failing(0);
    expect((await service.resolveBaseImage({ ref: ref(), useRetryClient: false })).ref).toContain(suite.busyboxDigest);
    expect((await service.resolveBaseImage({ ref: ref(), useRetryClient: true })).ref).toContain(suite.busyboxDigest);
  });

  it('off, 1 failure → error (UNAVAILABLE)', async () => {
    failing(1);
    expect((await serviceErrorOf(service.resolveBaseImage({ ref: ref(), useRetryClient: false }))).status).toBe('UNAVAILABLE');
  });

  it('on, 2 failures → ok', async () => {
    failing(2);
    expect((await service.resolveBaseImage({ ref: ref(), useRetryClient: true })).ref).toContain(suite.busyboxDigest);
    expect(proxy.applied()).toBe(2);
  });

  it('on, 10 failures → error after 4 attempts', async () => {
    failing(10);
    expect((await serviceErrorOf(service.resolveBaseImage({ ref: ref(), useRetryClient: true }))).status).toBe('UNAVAILABLE');
    expect(proxy.applied()).toBe(4);
  });

  it('429 → UNAVAILABLE with mk3\'s message', async () => {
    proxy.setPlan([{ path: /\/manifests\//, times: 1, action: { kind: 'status', status: 429 } }]);
    const err = await serviceErrorOf(service.resolveBaseImage({ ref: ref(), useRetryClient: false }));
    expect(err.status).toBe('UNAVAILABLE');
    expect(err.message).toContain("too many request");
  });
});

describe('the ref cache (refCache.interval + refCache.refs)', () => {
  it('answers exactly the configured strings from the cache, everything else from the registry', async () => {
    const cachedRef = `${suite.registry.host}/cached:latest`;
    const pool = new RegistryClientPool();
    const repo = pool.repository({ registry: suite.registry.host, repository: 'cached' });
    const first = await makeImage();
    const second = await makeImage();
    try {
      await copyGraph(await storeOf([first]), repo, first.descriptor);
      await repo.tag(first.descriptor, 'latest');
      const cachedService = new ImageBuilderService({ config: suite.config({}, { refCache: { interval: '1h', refs: [cachedRef] } }), httpBaseUrl: 'http://127.0.0.1:1' });
      await cachedService.start();
      try {
        // The tag moves on; the cached string still answers what was resolved at start.
        await copyGraph(await storeOf([second]), repo, second.descriptor);
        await repo.tag(second.descriptor, 'latest');
        expect(await cachedService.resolveBaseImage({ ref: cachedRef })).toEqual({ ref: `${suite.registry.host}/cached@${first.descriptor.digest}` });
        expect(await cachedService.resolveBaseImage({ ref: `${suite.registry.host}/cached` })).toEqual({ ref: `${suite.registry.host}/cached@${second.descriptor.digest}` });
      } finally {
        await cachedService.shutdown(0);
      }
    } finally {
      await pool.close();
    }
  });
});
