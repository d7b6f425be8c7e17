import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCommand, DEFAULT_OUTPUT_DIR } from '../../src/cli/commands/build.js';
import { UsageError, type CliIO } from '../../src/cli/command.js';
import { skopeoInspect, startBuildSuite, validateLayoutImage, type BuildSuite } from './helpers.js';

/** `stevedore build` end to end, in process: outputs, progress modes, files it writes, errors. */

let suite: BuildSuite;
let counter = 0;

beforeAll(async () => {
  suite = await startBuildSuite();
});

afterAll(async () => {
  await suite?.stop();
});

interface Captured {
  readonly io: CliIO;
  stdout(): string;
  stderr(): string;
}

function capture(cwd: string, env: Record<string, string> = {}): Captured {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  return {
    io: { stdout, stderr, stdin: Readable.from([]), env: { HOME: suite.dir, ...env }, cwd },
    stdout: () => Buffer.concat(out).toString('utf8'),
    stderr: () => Buffer.concat(err).toString('utf8'),
  };
}

async function project(files: Record<string, string>): Promise<string> {
  const dir = join(suite.dir, `cli-${++counter}`);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  return dir;
}

describe('stevedore build', () => {
  it('with no -t or --output writes ./stevedore-out, and writes --iidfile and --metadata-file', async () => {
    const cwd = await project({ 'Dockerfile': 'FROM scratch\nCOPY hello.txt /\nCMD ["/hello"]\n', 'hello.txt': 'hello\n' });
    const c = capture(cwd);
    const code = await buildCommand.run(['--progress', 'plain', '--iidfile', 'iid.txt', '--metadata-file', 'meta.json', '--cache-dir', suite.cacheDir, '.'], c.io);
    expect(code).toBe(0);
    const line = c.stdout().trim();
    expect(line).toMatch(new RegExp(`^oci:${join(cwd, DEFAULT_OUTPUT_DIR)}:latest@sha256:[0-9a-f]{64}$`));
    await validateLayoutImage(join(cwd, DEFAULT_OUTPUT_DIR), 'latest');
    expect(c.stderr()).toContain('[stage-0 1/2] COPY hello.txt /');

    const metadata = JSON.parse(await readFile(join(cwd, 'meta.json'), 'utf8')) as Record<string, unknown>;
    expect(metadata['containerimage.digest']).toBe(line.slice(line.indexOf('@') + 1));
    expect(metadata['containerimage.descriptor']).toMatchObject({ mediaType: 'application/vnd.oci.image.manifest.v1+json' });
    expect(await readFile(join(cwd, 'iid.txt'), 'utf8')).toBe(metadata['containerimage.config.digest']);
  });

  it('--push sends the image to every -t, --progress json prints one event per line', async () => {
    const cwd = await project({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nCOPY hello.txt /\n', 'hello.txt': 'hello\n' });
    const refs = [`${suite.registry.host}/cli/app:1`, `${suite.registry.host}/cli/app:latest`];
    const c = capture(cwd, { SOURCE_DATE_EPOCH: '86400' });
    const code = await buildCommand.run(
      ['--push', ...refs.flatMap((r) => ['-t', r]), '--build-arg', `BASE=${suite.busybox}`, '--insecure-registry', suite.registry.host, '--progress', 'json', '--cache-dir', suite.cacheDir, '--metadata-file', 'meta.json', cwd],
      c.io,
    );
    expect(code).toBe(0);
    const printed = c.stdout().trim().split('\n');
    expect(printed).toHaveLength(2);
    const digest = printed[0]!.slice(printed[0]!.indexOf('@') + 1);
    for (const ref of refs) expect((await skopeoInspect(ref)).Digest).toBe(digest);
    const events = c.stderr().trim().split('\n').map((l) => JSON.parse(l) as { type: string });
    expect(events[0]?.type).toBe('build-started');
    expect(events.at(-1)?.type).toBe('build-finished');
    expect(events.some((e) => e.type === 'blob')).toBe(true);
    const metadata = JSON.parse(await readFile(join(cwd, 'meta.json'), 'utf8')) as Record<string, string>;
    expect(metadata['image.name']).toBe(refs.join(','));
  });

  it('a failing step shows its Dockerfile lines', async () => {
    const cwd = await project({ 'Dockerfile': 'FROM scratch\nCOPY missing.txt /\nCMD ["x"]\n' });
    const c = capture(cwd);
    await expect(buildCommand.run(['--progress', 'quiet', '--cache-dir', suite.cacheDir], c.io)).rejects.toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND' });
    expect(c.stderr()).toContain('>>> 2 | COPY missing.txt /');
  });

  it('refuses inconsistent flags', async () => {
    const cwd = await project({ 'Dockerfile': 'FROM scratch\n' });
    await expect(buildCommand.run(['--push'], capture(cwd).io)).rejects.toBeInstanceOf(UsageError);
    await expect(buildCommand.run(['--output', 'type=registry'], capture(cwd).io)).rejects.toBeInstanceOf(UsageError);
    await expect(buildCommand.run(['--progress', 'fancy'], capture(cwd).io)).rejects.toBeInstanceOf(UsageError);
    await expect(buildCommand.run(['-t', 'UPPER/Case'], capture(cwd).io)).rejects.toBeInstanceOf(UsageError);
  });
});
