import { mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildStepError, OutputError } from '../../src/build/index.js';
import { DockerfileError } from '../../src/dockerfile/index.js';
import { noRetryPolicy, RegistryClientPool } from '../../src/registry/index.js';
import { findDanglingReferences, startRegistry, type TestRegistry } from '../harness/index.js';
import { exists, failBuild, startBuildSuite, writeContext, type BuildSuite } from './helpers.js';

/**
 * Bad input fails with a typed error naming the Dockerfile line, and leaves nothing behind: no
 * tag pointing at a half-pushed image, no half-written OCI layout.
 */

let suite: BuildSuite;

beforeAll(async () => {
  suite = await startBuildSuite();
});

afterAll(async () => {
  await suite?.stop();
});

function context(files: Record<string, string>): Promise<string> {
  return writeContext(suite, files);
}

const base = (): { buildArgs: { BASE: string }; registry: { insecureRegistries: string[] }; cacheDir: string } => ({
  buildArgs: { BASE: suite.busybox },
  registry: { insecureRegistries: [suite.registry.host] },
  cacheDir: suite.cacheDir,
});

describe('Dockerfile errors', () => {
  it('a syntax error is a DockerfileError with its line', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY a.txt /\nFROOM x\n' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toBeInstanceOf(DockerfileError);
    expect(error).toMatchObject({ code: 'DOCKERFILE_UNKNOWN_INSTRUCTION', startLine: 3 });
    expect((error as Error).message).toMatch(/^Dockerfile:3: /);
  });

  it('a missing Dockerfile is an option error', async () => {
    const ctx = await context({ 'a.txt': 'a' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toMatchObject({ code: 'INVALID_BUILD_OPTIONS' });
  });
});

describe('COPY errors', () => {
  it('a missing source names the line and the source', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY a.txt /\nCOPY missing.txt /\n', 'a.txt': 'a' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toBeInstanceOf(BuildStepError);
    expect(error).toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND', startLine: 3 });
    expect((error as Error).message).toContain('Dockerfile:3: COPY missing.txt /: "missing.txt" not found in the build context');
  });

  it('a file excluded by .dockerignore is missing too', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY secret.key /\n', 'secret.key': 'k', '.dockerignore': '*.key\n' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toMatchObject({ code: 'COPY_SOURCE_NOT_FOUND', startLine: 2 });
  });

  it('a source symlink leaving the context and a ../ source are refused', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY escape /x\n' });
    await symlink('../../../etc/passwd', join(ctx, 'escape'));
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toMatchObject({ code: 'CONTEXT_ESCAPE', startLine: 2 });

    const absolute = await context({ 'Dockerfile': 'FROM scratch\nCOPY hostfile /x\n' });
    await symlink('/etc/hostname', join(absolute, 'hostfile'));
    expect((await failBuild({ context: absolute, cacheDir: suite.cacheDir })).error).toMatchObject({ code: 'CONTEXT_ESCAPE' });

    const dotdot = await context({ 'Dockerfile': 'FROM scratch\nCOPY ../outside /x\n' });
    expect((await failBuild({ context: dotdot, cacheDir: suite.cacheDir })).error).toMatchObject({ code: 'CONTEXT_ESCAPE', startLine: 2 });
  });

  it('several sources need a directory destination ending in /', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY a.txt b.txt /dest\n', 'a.txt': 'a', 'b.txt': 'b' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toMatchObject({ code: 'COPY_DESTINATION_NOT_DIRECTORY', startLine: 2 });
  });

  it('a file cannot replace a directory', async () => {
    // other/sub is a file; /x/sub is already a directory (a single file would land inside it instead).
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY dir /x/\nCOPY other /x/\n', 'dir/sub/f': 'f', 'other/sub': 'file' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toMatchObject({ code: 'COPY_CONFLICT', startLine: 3 });
  });

  it('--chown with a name the image does not know', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nCOPY --chown=nosuchuser a.txt /a\n', 'a.txt': 'a' });
    const { error } = await failBuild({ context: ctx, ...base() });
    expect(error).toMatchObject({ code: 'USER_NOT_FOUND', startLine: 3 });
  });
});

describe('RUN errors', () => {
  it('a failing command gives its exit code and last lines', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nRUN echo first && \\\n    echo oops >&2 && exit 3\n' });
    const { error } = await failBuild({ context: ctx, ...base() });
    expect(error).toMatchObject({ code: 'RUN_FAILED', startLine: 3, endLine: 4 });
    const cause = (error as BuildStepError).cause as { exitCode: number; outputTail: string[] };
    expect(cause.exitCode).toBe(3);
    expect(cause.outputTail).toEqual(['first', 'oops']);
    expect((error as Error).message).toContain('exit code 3');
  });
});

describe('base image errors', () => {
  it('an unreachable registry fails at the FROM line', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch AS a\n\nFROM 127.0.0.1:9/nothing/here:1\nCOPY --from=a / /\n' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir, registry: { retryPolicy: noRetryPolicy } });
    expect(error).toBeInstanceOf(BuildStepError);
    expect(error).toMatchObject({ code: 'CONNECTION_FAILED', startLine: 3 });
  });

  it('a base that does not exist fails at its FROM line', async () => {
    const ctx = await context({ 'Dockerfile': `FROM ${suite.registry.host}/no/such:image\n` });
    const { error } = await failBuild({ context: ctx, ...base() });
    expect(error).toMatchObject({ name: 'BuildStepError', startLine: 1 });
    expect(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN', 'NOT_FOUND']).toContain((error as BuildStepError).code);
  });
});

describe('output errors', () => {
  let secured: TestRegistry;

  beforeAll(async () => {
    secured = await startRegistry({ auth: 'basic' });
  });

  afterAll(async () => {
    await secured?.stop();
  });

  it('a denied push leaves no tag and no half-written layout', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'a' });
    const layout = join(suite.dir, 'denied-layout');
    const reference = `${secured.host}/denied/app:1`;
    const { error } = await failBuild({
      context: ctx,
      cacheDir: suite.cacheDir,
      outputs: [
        { type: 'layout', dir: layout },
        { type: 'registry', reference },
      ],
      registry: { insecureRegistries: [secured.host], credentials: { username: secured.credentials!.username, password: 'wrong' } },
    });
    expect(error).toBeInstanceOf(OutputError);
    expect((error as OutputError).code).toBe('UNAUTHORIZED');
    expect(await exists(layout)).toBe(false);

    // Seen with the right credentials: the repository has no tag.
    const pool = new RegistryClientPool({ insecureRegistries: [secured.host], credentials: secured.credentials! });
    try {
      const tags = await pool.client(secured.host).repository('denied/app').tags().catch(() => []);
      expect(tags).toEqual([]);
    } finally {
      await pool.close();
    }
    expect(await findDanglingReferences(secured.rootDirectory)).toEqual([]);
  });

  it('an invalid output reference fails before anything is pushed', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'a' });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir, outputs: [{ type: 'registry', reference: 'Not A Reference' }] });
    expect(error).toBeInstanceOf(OutputError);
    expect((error as OutputError).code).toBe('INVALID_REFERENCE');
  });
});

describe('cleanup', () => {
  it('a failed build leaves its work directory empty', async () => {
    const work = join(suite.dir, 'work-failed');
    await mkdir(work);
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY missing /\n' });
    await failBuild({ context: ctx, cacheDir: suite.cacheDir, workDir: work });
    expect(await readdir(work)).toEqual([]);
  });
});
