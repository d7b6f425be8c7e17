import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dockerConfigCredential,
  dockerConfigPath,
  encodeDockerAuth,
  eraseDockerCredential,
  readDockerConfig,
  storeDockerCredential,
} from '../../src/registry/index.js';
import { tempDir } from '../harness/index.js';

let dir: { path: string; remove: () => Promise<void> };
let env: Record<string, string>;
let path: string;

beforeEach(async () => {
  dir = await tempDir('stevedore-dockerconfig-');
  env = { DOCKER_CONFIG: join(dir.path, 'cfg'), PATH: process.env.PATH ?? '' };
  path = join(dir.path, 'cfg', 'config.json');
});

afterEach(async () => {
  await dir.remove();
});

async function writeConfig(value: unknown): Promise<void> {
  await mkdir(join(dir.path, 'cfg'), { recursive: true });
  await writeFile(path, typeof value === 'string' ? value : JSON.stringify(value));
}

/** A credential helper script that keeps its store in a JSON file next to it. */
async function installHelper(name: string): Promise<string> {
  const bin = join(dir.path, 'bin');
  await mkdir(bin, { recursive: true });
  const store = join(dir.path, `${name}-store.json`);
  await writeFile(
    join(bin, `docker-credential-${name}`),
    `#!/usr/bin/env node
const fs = require('fs');
const store = ${JSON.stringify(store)};
const data = fs.existsSync(store) ? JSON.parse(fs.readFileSync(store, 'utf8')) : {};
const input = fs.readFileSync(0, 'utf8').trim();
const action = process.argv[2];
if (action === 'store') { const c = JSON.parse(input); data[c.ServerURL] = c; fs.writeFileSync(store, JSON.stringify(data)); }
else if (action === 'get') { if (!data[input]) { process.stdout.write('credentials not found in native keychain'); process.exit(1); } process.stdout.write(JSON.stringify(data[input])); }
else if (action === 'erase') { if (!data[input]) { process.stdout.write('credentials not found in native keychain'); process.exit(1); } delete data[input]; fs.writeFileSync(store, JSON.stringify(data)); }
`,
    { mode: 0o755 },
  );
  env.PATH = `${bin}:${env.PATH}`;
  return store;
}

describe("Docker's config.json", () => {
  it('finds the file like Docker does', () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: '/x' })).toBe('/x/config.json');
    expect(dockerConfigPath({ HOME: '/home/u' })).toBe('/home/u/.docker/config.json');
  });

  it('reads auth, username/password, identity and registry tokens, and URL-shaped keys', async () => {
    await writeConfig({
      auths: {
        'https://index.docker.io/v1/': { auth: encodeDockerAuth('hub', 'hubpass') },
        'reg.example:5000': { username: 'u', password: 'p' },
        'https://legacy.example/v1/': { auth: encodeDockerAuth('legacy', 'pw') },
        'id.example': { auth: encodeDockerAuth('someone', ''), identitytoken: 'refresh-me' },
        'tok.example': { registrytoken: 'bearer-token' },
        'empty.example': {},
      },
    });
    expect(await dockerConfigCredential('docker.io', { env })).toEqual({ username: 'hub', password: 'hubpass' });
    expect(await dockerConfigCredential('reg.example:5000', { env })).toEqual({ username: 'u', password: 'p' });
    expect(await dockerConfigCredential('legacy.example', { env })).toEqual({ username: 'legacy', password: 'pw' });
    expect(await dockerConfigCredential('id.example', { env })).toEqual({ identityToken: 'refresh-me', username: 'someone' });
    expect(await dockerConfigCredential('tok.example', { env })).toEqual({ registryToken: 'bearer-token' });
    expect(await dockerConfigCredential('empty.example', { env })).toBeUndefined();
    expect(await dockerConfigCredential('unknown.example', { env })).toBeUndefined();
  });

  it('treats a missing file as empty and a broken one as a typed error without its content', async () => {
    expect(await readDockerConfig(join(dir.path, 'nope.json'))).toEqual({});
    await writeConfig('{"auths": {"x": {"auth": "c2VjcmV0OnNlY3JldA=="}}'); // truncated JSON
    const err = await dockerConfigCredential('x', { env }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'INVALID_DOCKER_CONFIG' });
    expect((err as Error).message).not.toContain('c2VjcmV0');
    await writeConfig({ auths: { x: 'not an object' } });
    await expect(dockerConfigCredential('x', { env })).rejects.toMatchObject({ code: 'INVALID_DOCKER_CONFIG' });
  });

  it('stores and erases logins in the file atomically, mode 0600, keeping other keys', async () => {
    await writeConfig({ auths: { 'keep.example': { auth: encodeDockerAuth('k', 'k') } }, HttpHeaders: { 'X-Test': '1' } });
    await storeDockerCredential('new.example:5000', { username: 'n', password: 'secret:with:colons' }, { env });
    await storeDockerCredential('docker.io', { username: 'hub', password: 'h' }, { env });
    const config = JSON.parse(await readFile(path, 'utf8'));
    expect(Object.keys(config.auths).sort()).toEqual(['https://index.docker.io/v1/', 'keep.example', 'new.example:5000']);
    expect(config.HttpHeaders).toEqual({ 'X-Test': '1' });
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await dockerConfigCredential('new.example:5000', { env })).toEqual({ username: 'n', password: 'secret:with:colons' });
    expect(await eraseDockerCredential('new.example:5000', { env })).toBe(true);
    expect(await eraseDockerCredential('new.example:5000', { env })).toBe(false);
    expect(await dockerConfigCredential('new.example:5000', { env })).toBeUndefined();
    expect(await dockerConfigCredential('keep.example', { env })).toEqual({ username: 'k', password: 'k' });
  });

  it('creates the file and its directory on first login', async () => {
    await storeDockerCredential('first.example', { username: 'a', password: 'b' }, { env });
    expect((await stat(join(dir.path, 'cfg'))).mode & 0o777).toBe(0o700);
    expect(await dockerConfigCredential('first.example', { env })).toEqual({ username: 'a', password: 'b' });
  });

  it('uses credential helpers (credHelpers per host, credsStore by default) for get, store and erase', async () => {
    const store = await installHelper('teststore');
    await writeConfig({ credsStore: 'teststore', auths: {} });
    await storeDockerCredential('helper.example', { username: 'h', password: 'from-helper' }, { env });
    const config = JSON.parse(await readFile(path, 'utf8'));
    // Docker leaves an empty entry in the file; the secret lives in the helper.
    expect(config.auths['helper.example']).toEqual({});
    expect(JSON.parse(await readFile(store, 'utf8'))['helper.example']).toMatchObject({ Username: 'h', Secret: 'from-helper' });
    expect(await dockerConfigCredential('helper.example', { env })).toEqual({ username: 'h', password: 'from-helper' });
    await writeFile(store, JSON.stringify({ 'id.example': { ServerURL: 'id.example', Username: '<token>', Secret: 'refresh' } }));
    expect(await dockerConfigCredential('id.example', { env })).toEqual({ identityToken: 'refresh' });
    expect(await eraseDockerCredential('id.example', { env })).toBe(true);
    expect(await dockerConfigCredential('id.example', { env })).toBeUndefined();
  });

  it('reports a missing helper clearly', async () => {
    await writeConfig({ credHelpers: { 'x.example': 'not-installed-anywhere' } });
    await expect(dockerConfigCredential('x.example', { env })).rejects.toMatchObject({ code: 'CREDENTIAL_HELPER_FAILED', message: expect.stringMatching(/not installed/) });
    // Other hosts are unaffected.
    expect(await dockerConfigCredential('y.example', { env })).toBeUndefined();
  });
});
