import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/command.js';
import { copyCommand } from '../../src/cli/commands/copy.js';
import { loginCommand } from '../../src/cli/commands/login.js';
import { logoutCommand } from '../../src/cli/commands/logout.js';
import { resolveCommand } from '../../src/cli/commands/resolve.js';
import { copyGraph, OciLayout } from '../../src/oci/index.js';
import { encodeDockerAuth } from '../../src/registry/index.js';
import { randomBytes } from 'node:crypto';
import { runCommand, type CliRun } from '../cli/helpers.js';
import { makeImage, makeIndex, startFaultProxy, startRegistry, storeOf, tempDir, type TestRegistry } from '../harness/index.js';

let registry: TestRegistry;
let dir: { path: string; remove: () => Promise<void> };
let authfile: string;

beforeAll(async () => {
  registry = await startRegistry({ auth: 'basic' });
  dir = await tempDir('stevedore-cli-');
  authfile = join(dir.path, 'docker', 'config.json');
});

afterAll(async () => {
  await registry?.stop();
  await dir?.remove();
});

function cli(command: Parameters<typeof runCommand>[0], args: string[], stdin = ''): Promise<CliRun> {
  return runCommand(command, args, { cwd: dir.path, env: { HOME: dir.path }, stdin });
}

describe('stevedore login / logout', () => {
  it('checks the password, then stores it with mode 0600, keeping other keys', async () => {
    await mkdir(join(dir.path, 'docker'), { recursive: true });
    await writeFile(authfile, JSON.stringify({ auths: { 'other.example': { auth: encodeDockerAuth('o', 'p') } }, proxies: { default: { httpProxy: 'http://proxy' } } }));

    const wrong = 'definitely-wrong-password';
    const failure = await cli(loginCommand, [registry.host, '-u', 'stevedore', '--password-stdin', '--authfile', authfile], `${wrong}\n`).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: 'UNAUTHORIZED' });
    expect(JSON.stringify(failure) + (failure as Error).message).not.toContain(wrong);
    expect(JSON.parse(await readFile(authfile, 'utf8')).auths[registry.host]).toBeUndefined();

    const ok = await cli(loginCommand, [registry.host, '-u', 'stevedore', '--password-stdin', '--authfile', authfile], `${registry.credentials!.password}\n`);
    expect(ok).toMatchObject({ code: 0, stdout: 'Login Succeeded\n' });
    const config = JSON.parse(await readFile(authfile, 'utf8'));
    expect(config.auths[registry.host]).toEqual({ auth: encodeDockerAuth('stevedore', registry.credentials!.password) });
    expect(config.auths['other.example']).toBeDefined();
    expect(config.proxies).toEqual({ default: { httpProxy: 'http://proxy' } });
    expect((await stat(authfile)).mode & 0o777).toBe(0o600);
  });

  it('refuses bad arguments as usage errors', async () => {
    await expect(cli(loginCommand, [registry.host, '--password-stdin'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(loginCommand, [registry.host, '-u', 'x'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(loginCommand, [registry.host, '-u', 'x', '--bogus'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(copyCommand, ['only-one'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(copyCommand, ['dir:/x', 'oci:/y'])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(resolveCommand, [])).rejects.toBeInstanceOf(UsageError);
    await expect(cli(resolveCommand, ['x', '--retry', 'forever'])).rejects.toBeInstanceOf(UsageError);
  });

  it('logs out, removing only that entry', async () => {
    const first = await cli(logoutCommand, [`https://${registry.host}/`, '--authfile', authfile]);
    expect(first).toMatchObject({ code: 0, stdout: `Removing login credentials for ${registry.host}\n` });
    const config = JSON.parse(await readFile(authfile, 'utf8'));
    expect(config.auths[registry.host]).toBeUndefined();
    expect(config.auths['other.example']).toBeDefined();
    expect(await cli(logoutCommand, [registry.host, '--authfile', authfile])).toMatchObject({ code: 0, stdout: `Not logged in to ${registry.host}\n` });
  });
});

describe('stevedore copy / resolve', () => {
  it('copies a layout to the registry and back, and resolves it', async () => {
    await cli(loginCommand, [registry.host, '-u', 'stevedore', '--password-stdin', '--authfile', authfile], registry.credentials!.password);
    const images = await Promise.all([{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }].map((platform) => makeImage({ platform })));
    const index = makeIndex(images);
    const layout = await OciLayout.open(join(dir.path, 'src-layout'), { create: true });
    await copyGraph(await storeOf(images, index), layout, index.descriptor);
    await layout.tag(index.descriptor, 'multi');

    const auth = ['--authfile', authfile];
    const pushAll = await cli(copyCommand, ['oci:src-layout:multi', `docker://${registry.host}/cli/app:multi`, '--all', '--progress', 'json', ...auth]);
    expect(pushAll.code).toBe(0);
    expect(pushAll.stdout).toBe(`${registry.host}/cli/app@${index.descriptor.digest}\n`);
    const events = pushAll.stderr.trim().split('\n').map((line) => JSON.parse(line) as { source: string; type: string });
    expect(events.filter((e) => e.source === 'copy' && e.type === 'copied')).toHaveLength(7);
    expect(events.at(-1)).toMatchObject({ source: 'copy', type: 'done', copied: 7 });

    const resolved = await cli(resolveCommand, [`${registry.host}/cli/app:multi`, '--platform', 'linux/arm64', ...auth]);
    expect(resolved).toMatchObject({ code: 0, stdout: `${registry.host}/cli/app@${images[1]!.descriptor.digest}\n` });
    const json = await cli(resolveCommand, [`${registry.host}/cli/app:multi`, '--json', ...auth]);
    expect(JSON.parse(json.stdout)).toMatchObject({ descriptor: { digest: images[0]!.descriptor.digest }, platform: 'linux/amd64', index: { digest: index.descriptor.digest } });

    // One platform only, to another repository of the same registry (mounted), then to a layout.
    const one = await cli(copyCommand, [`${registry.host}/cli/app:multi`, `${registry.host}/cli/arm:v1`, '--platform', 'linux/arm64', '--progress', 'plain', ...auth]);
    expect(one.stdout).toBe(`${registry.host}/cli/arm@${images[1]!.descriptor.digest}\n`);
    expect(one.stderr).toMatch(/mounted/);
    const pulled = await cli(copyCommand, [`docker://${registry.host}/cli/arm:v1`, 'oci:out-layout', '--progress', 'none', ...auth]);
    expect(pulled.stdout).toBe(`oci:${join(dir.path, 'out-layout')}:v1@${images[1]!.descriptor.digest}\n`);
    expect(await (await OciLayout.open(join(dir.path, 'out-layout'))).resolve('v1')).toMatchObject({ digest: images[1]!.descriptor.digest });

    await expect(cli(copyCommand, [`${registry.host}/cli/app:multi`, 'oci:x', '--platform', 'linux/s390x', ...auth])).rejects.toMatchObject({ code: 'PLATFORM_NOT_FOUND' });
    await expect(cli(resolveCommand, [`${registry.host}/cli/missing:latest`, ...auth])).rejects.toMatchObject({ code: 'MANIFEST_UNKNOWN' });
  });

  it('restarts a streamed upload that is cut off, from a fresh stream of the source', async () => {
    const plain = await startRegistry();
    const proxy = await startFaultProxy(plain.url, [{ method: 'PATCH', action: { kind: 'reset-request', afterBytes: 1_000_000 } }]);
    try {
      // A layer above the monolithic limit goes as one streamed PATCH; copyGraph hands the
      // registry an opener, so the cut upload starts again from a new POST within the copy.
      const image = await makeImage({ layers: [[{ name: 'big.bin', content: randomBytes(6 * 1024 * 1024) }]] });
      const layout = await OciLayout.open(join(dir.path, 'big-layout'), { create: true });
      await copyGraph(await storeOf([image]), layout, image.descriptor);
      await layout.tag(image.descriptor, 'v1');
      const result = await cli(copyCommand, ['oci:big-layout:v1', `${proxy.host}/cli/big:v1`, '--progress', 'plain', '--authfile', join(dir.path, 'none.json')]);
      expect(result.stdout).toBe(`${proxy.host}/cli/big@${image.descriptor.digest}\n`);
      expect(result.stderr).toMatch(/retry {3}push blob cli\/big@sha256:[0-9a-f]{64} \(attempt 1\/\d+ failed: /);
      expect(result.stderr).not.toMatch(/interrupted/);
      expect(proxy.applied()).toBe(1);
      expect(proxy.log.filter((e) => e.method === 'PATCH')).toHaveLength(2);
    } finally {
      await proxy.stop();
      await plain.stop();
    }
  });
});
