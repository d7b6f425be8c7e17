import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  additionalAuthFor,
  allowAllPolicy,
  decodeAdditionalAuth,
  isEcrRegistry,
  PullSecret,
  registryAuthPolicy,
  type RegistryAuthContext,
} from '../../src/service/index.js';
import { tempDir } from '../harness/index.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('isEcrRegistry (auth_test.go TestIsECRRegistry)', () => {
  it.each([
    ['422899872803.dkr.ecr.eu-central-1.amazonaws.com/private-repo-demo:latest', true],
    ['422899872803.dkr.ecr.eu-central-1.amazonaws.com', true],
    ['index.docker.io/foo:bar', false],
    ['42289987280.dkr.ecr.eu-central-1.amazonaws.com', false],
    ['evil.com/422899872803.dkr.ecr.eu-central-1.amazonaws.com', false],
  ])('%s → %s', (registry, expected) => {
    expect(isEcrRegistry(registry)).toBe(expected);
  });
});

describe('additional auth (auth_test.go TestAdditionalAuth)', () => {
  it('host:token → user = host, password = token', () => {
    const auth = b64('myregistry.com:token');
    expect(additionalAuthFor({ 'myregistry.com': auth }, 'myregistry.com')).toEqual({ auth, username: 'myregistry.com', password: 'token' });
  });

  it('host:5000:token splits on the last colon', () => {
    const auth = b64('myregistry.com:5000:token');
    expect(additionalAuthFor({ 'myregistry.com:5000': auth }, 'myregistry.com:5000')).toEqual({ auth, username: 'myregistry.com:5000', password: 'token' });
  });

  it('a single segment gives only the raw auth', () => {
    const auth = b64('justonesegment');
    expect(additionalAuthFor({ 'r.com': auth }, 'r.com')).toEqual({ auth });
  });

  it('an empty string gives only the raw auth', () => {
    expect(additionalAuthFor({ 'r.com': '' }, 'r.com')).toEqual({ auth: '' });
  });

  it('a missing key gives nothing', () => {
    expect(additionalAuthFor({ 'r.com': b64('a:b') }, 'other.com')).toBeUndefined();
    expect(additionalAuthFor(undefined, 'other.com')).toBeUndefined();
  });

  it('invalid base64 gives only the raw auth', () => {
    expect(decodeAdditionalAuth('not base64!')).toEqual({ auth: 'not base64!' });
  });

  it('user1:pass1 under docker.io', () => {
    const auth = b64('user1:pass1');
    expect(additionalAuthFor({ 'docker.io': auth }, 'docker.io')).toEqual({ auth, username: 'user1', password: 'pass1' });
  });
});

describe('registry auth policy (SPEC-gitpod.md §8)', () => {
  const installed: Record<string, { username: string; password: string }> = {
    '127.0.0.1:5000': { username: 'install', password: 'install-pw' },
    'docker.io': { username: 'hub', password: 'hub-pw' },
    '422899872803.dkr.ecr.eu-central-1.amazonaws.com': { username: 'AWS', password: 'ecr-pw' },
  };
  const context: RegistryAuthContext = {
    baseImageRepository: '127.0.0.1:5000/base-images',
    workspaceImageRepository: 'ws.example.com/workspace-images',
    installation: (host) => installed[host],
  };
  const userAuth = { 'docker.io': b64('me:my-pw'), 'ghcr.io': b64('gh:gh-pw') };

  it('no auth message: no installation credentials for any registry', async () => {
    const policy = registryAuthPolicy(undefined, context);
    expect(await policy.credentialFor('127.0.0.1:5000')).toBeUndefined();
    expect(policy.isAllowed('docker.io')).toBe(false);
  });

  it('allow-all uses installation credentials first, additional as the fallback', async () => {
    const policy = registryAuthPolicy({ mode: { kind: 'total', allowAll: true }, additional: userAuth }, context);
    expect(await policy.credentialFor('docker.io')).toEqual({ username: 'hub', password: 'hub-pw' });
    expect(await policy.credentialFor('ghcr.io')).toEqual({ username: 'gh', password: 'gh-pw' });
  });

  it('allow-none still uses the additional credentials', async () => {
    const policy = registryAuthPolicy({ mode: { kind: 'total', allowAll: false }, additional: userAuth }, context);
    expect(await policy.credentialFor('docker.io')).toEqual({ username: 'me', password: 'my-pw' });
    expect(await policy.credentialFor('127.0.0.1:5000')).toBeUndefined();
  });

  it('selective allows the base/workspace repositories and any_of by exact host', async () => {
    const policy = registryAuthPolicy({ mode: { kind: 'selective', allowBaseRepository: true, allowWorkspaceRepository: false, anyOf: ['docker.io'] } }, context);
    expect(policy.isAllowed('127.0.0.1:5000')).toBe(true);
    expect(policy.isAllowed('ws.example.com')).toBe(false);
    expect(policy.isAllowed('docker.io')).toBe(true);
    expect(policy.isAllowed('127.0.0.1')).toBe(false);
    expect(await policy.credentialFor('127.0.0.1:5000')).toEqual({ username: 'install', password: 'install-pw' });
  });

  it('ECR hosts are always allowed', async () => {
    const policy = registryAuthPolicy({ mode: { kind: 'total', allowAll: false } }, context);
    expect(await policy.credentialFor('422899872803.dkr.ecr.eu-central-1.amazonaws.com')).toEqual({ username: 'AWS', password: 'ecr-pw' });
  });

  it('the shortcut path forces the base repository on for selective auth', () => {
    const policy = registryAuthPolicy({ mode: { kind: 'selective', allowBaseRepository: false, allowWorkspaceRepository: false, anyOf: [] } }, context);
    expect(policy.isAllowed('127.0.0.1:5000')).toBe(false);
    expect(policy.withBaseRepositoryAllowed().isAllowed('127.0.0.1:5000')).toBe(true);
  });

  it('allowAllPolicy allows every registry, with no user credentials', async () => {
    expect(await allowAllPolicy(context).credentialFor('127.0.0.1:5000')).toEqual({ username: 'install', password: 'install-pw' });
  });

  it('lists every secret of the request for censoring', () => {
    const policy = registryAuthPolicy({ additional: userAuth }, context);
    expect(policy.secrets()).toEqual(expect.arrayContaining(['my-pw', 'gh-pw', userAuth['docker.io']]));
  });
});

describe('PullSecret', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    dir = await tempDir('stevedore-pull-secret-');
  });
  afterAll(async () => {
    await dir?.remove();
  });

  it('reads auths, matches host parts of keys, and re-reads the file when it changes', async () => {
    const path = join(dir.path, 'pull-secret.json');
    await writeFile(path, JSON.stringify({ auths: { 'https://127.0.0.1:5000/v1/': { auth: b64('a:first') }, 'https://index.docker.io/v1/': { auth: b64('hub:hubpw') } } }));
    const secret = new PullSecret(path);
    expect(await secret.credentialFor('127.0.0.1:5000')).toEqual({ username: 'a', password: 'first' });
    expect(await secret.credentialFor('docker.io')).toEqual({ username: 'hub', password: 'hubpw' });
    expect(await secret.credentialFor('ghcr.io')).toBeUndefined();
    await writeFile(path, JSON.stringify({ auths: { '127.0.0.1:5000': { auth: b64('a:second') } } }));
    expect(await secret.credentialFor('127.0.0.1:5000')).toEqual({ username: 'a', password: 'second' });
    expect(await secret.secrets()).toContain('second');
  });

  it('a missing file means no credentials; a broken one is an error that quotes nothing', async () => {
    expect(await new PullSecret(join(dir.path, 'missing.json')).credentialFor('x.io')).toBeUndefined();
    const path = join(dir.path, 'broken.json');
    await writeFile(path, '{"auths": {"x.io": {"auth": "c2VjcmV0OnNlY3JldA=="}');
    await expect(new PullSecret(path).credentialFor('x.io')).rejects.toThrow(/not valid JSON/);
    await expect(new PullSecret(path).credentialFor('x.io')).rejects.not.toThrow(/c2VjcmV0/);
  });
});
