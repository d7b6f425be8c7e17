import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyGraph, MemoryStore, OCI } from '../../src/oci/index.js';
import { anonymousCredentials, dockerConfigCredentials, encodeDockerAuth, RegistryClient, RegistryError } from '../../src/registry/index.js';
import { makeImage, readStream, sha256, startFaultProxy, startRegistry, storeOf, tempDir, type TestRegistry } from '../harness/index.js';

let basic: TestRegistry;
let token: TestRegistry;

beforeAll(async () => {
  [basic, token] = await Promise.all([startRegistry({ auth: 'basic' }), startRegistry({ auth: 'token' })]);
});

afterAll(async () => {
  await Promise.all([basic?.stop(), token?.stop()]);
});

/** The error must name the problem and never contain the secret. */
function expectNoSecret(err: unknown, secret: string): void {
  expect(err).toBeInstanceOf(RegistryError);
  const text = `${(err as Error).message} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
  expect(text).not.toContain(secret);
  expect(text).not.toContain(Buffer.from(secret).toString('base64'));
}

async function pushAndPull(client: RegistryClient, repository: string): Promise<void> {
  const image = await makeImage();
  const repo = client.repository(repository);
  await copyGraph(await storeOf([image]), repo, image.descriptor);
  await repo.tag(image.descriptor, 'v1');
  const pulled = new MemoryStore();
  await copyGraph(repo, pulled, await repo.resolve('v1'));
  expect(await pulled.exists(image.layers[0]!.descriptor)).toBe(true);
}

describe('Basic auth (htpasswd)', () => {
  it('pushes and pulls with the right password', async () => {
    const client = new RegistryClient(basic.host, { credentials: basic.credentials });
    try {
      expect(await client.ping()).toMatchObject({ auth: 'basic' });
      await client.checkLogin();
      await pushAndPull(client, 'basic/app');
    } finally {
      await client.close();
    }
  });

  it('fails with UNAUTHORIZED, without the password, when it is wrong', async () => {
    const password = `wrong-${randomBytes(8).toString('hex')}`;
    const client = new RegistryClient(basic.host, { credentials: { username: 'stevedore', password } });
    try {
      const err = await client.repository('basic/app').resolve('v1').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
      expect((err as Error).message).toContain('"stevedore"');
      expectNoSecret(err, password);
      await expect(client.checkLogin()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    } finally {
      await client.close();
    }
  });

  it('says so when no credentials are configured', async () => {
    const client = new RegistryClient(basic.host, { credentials: anonymousCredentials });
    try {
      await expect(client.repository('basic/app').resolve('v1')).rejects.toThrow(/no credentials are configured/);
    } finally {
      await client.close();
    }
  });

  it("reads credentials from Docker's config.json", async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir.path, 'config.json'), JSON.stringify({ auths: { [basic.host]: { auth: encodeDockerAuth(basic.credentials!.username, basic.credentials!.password) } } }));
      const client = new RegistryClient(basic.host, { credentials: dockerConfigCredentials({ env: { DOCKER_CONFIG: dir.path } }) });
      try {
        await client.checkLogin();
      } finally {
        await client.close();
      }
    } finally {
      await dir.remove();
    }
  });

  it('never sends credentials to another origin after a redirect', async () => {
    // The proxy redirects blob GETs to itself under another name (localhost), playing object
    // storage that authorises by signed URL (it adds the registry credentials itself).
    const proxy = await startFaultProxy(basic.url, [], {
      aliasAuthorization: `Basic ${encodeDockerAuth(basic.credentials!.username, basic.credentials!.password)}`,
    });
    const client = new RegistryClient(proxy.host, { credentials: basic.credentials });
    try {
      const data = randomBytes(50_000);
      const desc = { mediaType: OCI.layerGzip, digest: sha256(data), size: data.length };
      const repo = client.repository('basic/redirect');
      await repo.pushBlob(desc, data);
      const port = proxy.host.split(':')[1];
      proxy.setPlan([{ method: 'GET', path: /\/blobs\/sha256:/, action: { kind: 'redirect', to: `http://localhost:${port}` } }]);
      expect((await readStream(await repo.fetch(desc))).equals(data)).toBe(true);
      const redirected = proxy.log.filter((e) => e.host === `localhost:${port}`);
      expect(redirected).toHaveLength(1);
      expect(redirected[0]!.authorization).toBe(false);
      expect(proxy.log.find((e) => e.fault === 'redirect')?.authorization).toBe(true);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });
});

describe('Bearer token auth', () => {
  it('pushes and pulls with a token per scope, widening from pull to push', async () => {
    const client = new RegistryClient(token.host, { credentials: token.credentials });
    try {
      expect(await client.ping()).toMatchObject({ auth: 'bearer' });
      const before = token.tokenRequests!.length;
      await pushAndPull(client, 'token/app');
      const requests = token.tokenRequests!.slice(before);
      expect(requests.every((r) => r.account === 'stevedore' && r.method === 'GET' && r.status === 200)).toBe(true);
      // One pull token (the first existence check), then one push token that also serves pulls.
      expect(requests.map((r) => r.scopes.join(' '))).toEqual(['repository:token/app:pull', 'repository:token/app:pull,push']);
    } finally {
      await client.close();
    }
  });

  it('asks one token for both repositories when mounting', async () => {
    const client = new RegistryClient(token.host, { credentials: token.credentials });
    try {
      const data = randomBytes(1000);
      const desc = { mediaType: OCI.layerGzip, digest: sha256(data), size: data.length };
      await client.repository('token/mount-from').pushBlob(desc, data);
      const before = token.tokenRequests!.length;
      expect(await client.repository('token/mount-to').mount(desc, 'token/mount-from')).toBe(true);
      expect(token.tokenRequests!.slice(before).map((r) => [...r.scopes].sort())).toEqual([['repository:token/mount-from:pull', 'repository:token/mount-to:pull,push']]);
    } finally {
      await client.close();
    }
  });

  it('denies a push with a pull-only token (insufficient_scope → DENIED), pulls still work', async () => {
    const writer = new RegistryClient(token.host, { credentials: token.credentials });
    const reader = new RegistryClient(token.host, { credentials: token.readOnlyCredentials });
    try {
      await pushAndPull(writer, 'token/readonly');
      const image = await makeImage();
      const err = await copyGraph(await storeOf([image]), reader.repository('token/readonly'), image.descriptor).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'DENIED', status: 401 });
      expect((err as Error).message).toMatch(/push.*"reader"/);
      expectNoSecret(err, token.readOnlyCredentials!.password);
      expect((await reader.repository('token/readonly').tags())).toEqual(['v1']);
    } finally {
      await writer.close();
      await reader.close();
    }
  });

  it('fails with UNAUTHORIZED, without the password, when the token server refuses', async () => {
    const password = `wrong-${randomBytes(8).toString('hex')}`;
    const client = new RegistryClient(token.host, { credentials: { username: 'stevedore', password } });
    try {
      const err = await client.repository('token/app').resolve('v1').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'UNAUTHORIZED', status: 401 });
      expectNoSecret(err, password);
      await expect(client.checkLogin()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    } finally {
      await client.close();
    }
  });

  it('anonymous access gets UNAUTHORIZED', async () => {
    const client = new RegistryClient(token.host, { credentials: anonymousCredentials });
    try {
      await expect(client.repository('token/app').resolve('v1')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    } finally {
      await client.close();
    }
  });

  it('exchanges an identity token (OAuth2 refresh_token grant, POST)', async () => {
    const client = new RegistryClient(token.host, { credentials: { identityToken: token.identityToken! } });
    try {
      const before = token.tokenRequests!.length;
      await pushAndPull(client, 'token/identity');
      const requests = token.tokenRequests!.slice(before);
      expect(requests.length).toBeGreaterThan(0);
      expect(requests.every((r) => r.method === 'POST' && r.grantType === 'refresh_token' && r.status === 200)).toBe(true);
      const wrong = new RegistryClient(token.host, { credentials: { identityToken: 'refresh-invalid' } });
      await expect(wrong.repository('token/identity').resolve('v1')).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
      await wrong.close();
    } finally {
      await client.close();
    }
  });

  it('uses the OAuth2 password grant when asked', async () => {
    const client = new RegistryClient(token.host, { credentials: token.credentials, oauth2Password: true });
    try {
      const before = token.tokenRequests!.length;
      await client.repository('token/app').tags();
      expect(token.tokenRequests!.slice(before)).toEqual([expect.objectContaining({ method: 'POST', grantType: 'password', account: 'stevedore', status: 200 })]);
    } finally {
      await client.close();
    }
  });

  it('verifies a login with a scopeless token (docker login)', async () => {
    const client = new RegistryClient(token.host, { credentials: token.credentials });
    try {
      const before = token.tokenRequests!.length;
      await client.checkLogin();
      expect(token.tokenRequests!.slice(before)).toEqual([expect.objectContaining({ scopes: [], status: 200 })]);
    } finally {
      await client.close();
    }
  });
});

describe('Docker config credential helpers', () => {
  it('runs docker-credential-NAME get with the host on stdin', async () => {
    const dir = await tempDir();
    try {
      const bin = join(dir.path, 'bin');
      await mkdir(bin);
      // A helper that answers only for the basic registry, and records what it was asked.
      await writeFile(
        join(bin, 'docker-credential-stevedoretest'),
        `#!/bin/sh\nread host\necho "$1 $host" >> "${dir.path}/calls"\nif [ "$host" = "${basic.host}" ]; then printf '{"ServerURL":"%s","Username":"${basic.credentials!.username}","Secret":"${basic.credentials!.password}"}' "$host"; else echo "credentials not found in native keychain"; exit 1; fi\n`,
        { mode: 0o755 },
      );
      await writeFile(join(dir.path, 'config.json'), JSON.stringify({ credHelpers: { [basic.host]: 'stevedoretest' }, credsStore: 'stevedoretest' }));
      const env = { DOCKER_CONFIG: dir.path, PATH: `${bin}:${process.env.PATH ?? ''}` };
      const client = new RegistryClient(basic.host, { credentials: dockerConfigCredentials({ env }) });
      try {
        await client.checkLogin();
      } finally {
        await client.close();
      }
      expect(await dockerConfigCredentials({ env })('other.example:5000')).toBeUndefined();
    } finally {
      await dir.remove();
    }
  });
});

describe('token expiry', () => {
  it('fetches a fresh token when the registry refuses a cached one', async () => {
    // Announced for 300 s, but the JWT expires 3 s from now (distribution allows 60 s leeway).
    const short = await startRegistry({ auth: 'token', tokenExpiresIn: 300, tokenJwtLifetime: -57 });
    const client = new RegistryClient(short.host, { credentials: short.credentials });
    try {
      const repo = client.repository('expiry/app');
      const data = randomBytes(100);
      const desc = { mediaType: OCI.layerGzip, digest: sha256(data), size: data.length };
      expect(await repo.exists(desc)).toBe(false);
      expect(short.tokenRequests).toHaveLength(1);
      await new Promise((resolve) => setTimeout(resolve, 4000));
      expect(await repo.exists(desc)).toBe(false);
      expect(short.tokenRequests!.map((r) => r.scopes.join(' '))).toEqual(['repository:expiry/app:pull', 'repository:expiry/app:pull']);
    } finally {
      await client.close();
      await short.stop();
    }
  });
});
