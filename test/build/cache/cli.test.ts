import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../harness/index.js';
import { stevedore } from '../../cli/helpers.js';
import { startBuildSuite, writeContext, type BuildSuite } from '../helpers.js';

/**
 * The cache from the command line: CACHED in plain progress and the cache outcome in JSON
 * progress, and two `stevedore build` processes writing one cache directory at once.
 */

const root = resolve(fileURLToPath(import.meta.url), '../../../..');
const ENTRY = join(root, 'src/cli/main.ts');
/** tsx's loader by path: the builds run in a context directory outside the project. */
const TSX = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;

let suite: BuildSuite;

beforeAll(async () => {
  suite = await startBuildSuite();
}, 120_000);

afterAll(async () => {
  await suite?.stop();
});

const DOCKERFILE = ['ARG BASE', 'FROM ${BASE}', 'COPY a.txt /a.txt', 'RUN cat /proc/sys/kernel/random/uuid > /stamp', 'COPY b.txt /b.txt', ''].join('\n');

describe('stevedore build and the cache', () => {
  it('shows CACHED (plain) and the cache outcome (json); --no-cache and --no-cache-filter run the steps', async () => {
    const ctx = await writeContext(suite, { Dockerfile: DOCKERFILE, 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const cacheDir = join(suite.dir, 'cli-cache');
    const args = ['build', '--cache-dir', cacheDir, '--build-arg', `BASE=${suite.busybox}`, '--insecure-registry', suite.registry.host, '--output', `oci:${join(ctx, 'out')}`];
    const first = await stevedore([...args, '--progress', 'plain', '.'], { cwd: ctx });
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('(not in cache)');
    expect(first.stderr).not.toContain('CACHED');

    const second = await stevedore([...args, '--progress', 'plain', '.'], { cwd: ctx });
    expect(second.code).toBe(0);
    expect(second.stderr.match(/^ {2}CACHED/gm)).toHaveLength(3);
    expect(second.stdout).toBe(first.stdout);

    const json = await stevedore([...args, '--progress', 'json', '--no-cache-filter', '0', '.'], { cwd: ctx });
    const finished = json.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { type: string; cache?: unknown })
      .filter((e) => e.type === 'step-finished');
    expect(finished.map((e) => e.cache)).toEqual([
      { hit: false, reason: '--no-cache-filter stage-0' },
      { hit: false, reason: '--no-cache-filter stage-0' },
      { hit: false, reason: '--no-cache-filter stage-0' },
    ]);
  });

  it('two processes building at once into one cache directory both succeed, and leave a cache a third build hits', async () => {
    const ctx = await writeContext(suite, { Dockerfile: DOCKERFILE, 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const cacheDir = join(suite.dir, 'cli-shared-cache');
    const build = (out: string): Promise<{ stdout: string; stderr: string }> =>
      run(
        process.execPath,
        ['--import', TSX, ENTRY, 'build', '--progress', 'plain', '--cache-dir', cacheDir, '--build-arg', `BASE=${suite.busybox}`, '--insecure-registry', suite.registry.host, '--output', `oci:${join(ctx, out)}`, '.'],
        { cwd: ctx, timeoutMs: 90_000 },
      );
    const [one, two] = await Promise.all([build('one'), build('two')]);
    // Each process ran the RUN itself (no cross-process lock): both images are whole and valid.
    const digest = (text: string): string => /@(sha256:[0-9a-f]{64})/.exec(text)![1]!;
    expect(digest(one.stdout)).toMatch(/^sha256:/);
    expect(digest(two.stdout)).toMatch(/^sha256:/);

    const third = await stevedore(['build', '--progress', 'plain', '--cache-dir', cacheDir, '--build-arg', `BASE=${suite.busybox}`, '--insecure-registry', suite.registry.host, '--output', `oci:${join(ctx, 'three')}`, '.'], { cwd: ctx });
    expect(third.code).toBe(0);
    expect(third.stderr.match(/^ {2}CACHED/gm)).toHaveLength(3);
    // The third build took one of the two processes' entries, whole.
    expect([digest(one.stdout), digest(two.stdout)]).toContain(digest(third.stdout));
  }, 120_000);
});
