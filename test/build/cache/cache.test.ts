import { rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, type BuildEvent, type BuildOptions } from '../../../src/build/index.js';
import { validateImage } from '../../../src/layers/index.js';
import { OciLayout } from '../../../src/oci/index.js';
import { runBuild, startBuildSuite, writeContext, type BuildRun, type BuildSuite } from '../helpers.js';

/**
 * The build cache end to end, on the busybox base in a real registry: hits, misses and their
 * reasons, RUN not run again, --no-cache, the registry cache, and two builds sharing work.
 */

let suite: BuildSuite;
let caches = 0;

beforeAll(async () => {
  suite = await startBuildSuite();
}, 120_000);

afterAll(async () => {
  await suite?.stop();
});

const registry = (): Pick<BuildOptions, 'registry'> => ({ registry: { insecureRegistries: [suite.registry.host] } });

/** A fresh cache directory for one test. */
const freshCache = (): string => join(suite.dir, `cache-${++caches}`);

type StepFinished = Extract<BuildEvent, { type: 'step-finished' }>;

/** The step-finished events, by instruction (the first word and the rest, as written). */
function steps(run: BuildRun): StepFinished[] {
  return run.events.filter((e): e is StepFinished => e.type === 'step-finished');
}

function outcome(run: BuildRun): string[] {
  return steps(run).map((s) => `${s.instruction}: ${s.cache.hit ? 'hit' : `miss (${s.cache.reason})`}`);
}

const DOCKERFILE = [
  'ARG BASE',
  'FROM ${BASE}',
  'COPY a.txt /app/a.txt',
  // A RUN whose output differs every time it runs: the same digest proves it did not run again.
  'RUN cat /proc/sys/kernel/random/uuid > /app/stamp',
  'COPY src/ /app/src/',
  'ENV MODE=test',
  '',
].join('\n');

describe('local cache', () => {
  it('a second build of an unchanged context is all hits and gives the same digest; RUN is not run again', async () => {
    const ctx = await writeContext(suite, { Dockerfile: DOCKERFILE, 'a.txt': 'a\n', 'src/app.ts': 'export {}\n', 'src/lib.ts': 'lib\n' });
    const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, cacheDir: freshCache(), ...registry() };
    const first = await runBuild(options);
    expect(steps(first).every((s) => !s.cache.hit)).toBe(true);
    expect(steps(first)[0]!.cache).toEqual({ hit: false, reason: 'not in cache' });
    expect(first.result.steps.every((s) => !s.cached)).toBe(true);

    const second = await runBuild(options);
    expect(outcome(second)).toEqual(steps(second).map((s) => `${s.instruction}: hit`));
    expect(second.result.steps.every((s) => s.cached)).toBe(true);
    expect(second.result.digest).toBe(first.result.digest);
    // All hits: the base's layers were not even fetched, and nothing ran.
    expect(second.events.some((e) => e.type === 'layer-fetched' || e.type === 'rootfs-materialized' || e.type === 'log')).toBe(false);
  });

  it('changing one file re-runs the steps from the COPY that holds it, and the miss names the file', async () => {
    const ctx = await writeContext(suite, { Dockerfile: DOCKERFILE, 'a.txt': 'a\n', 'src/app.ts': 'export {}\n', 'src/lib.ts': 'lib\n' });
    const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, cacheDir: freshCache(), ...registry() };
    const first = await runBuild(options);
    await writeFile(join(ctx, 'src/app.ts'), 'export const x = 1;\n');
    const second = await runBuild(options);
    expect(outcome(second)).toEqual([
      'COPY a.txt /app/a.txt: hit',
      'RUN cat /proc/sys/kernel/random/uuid > /app/stamp: hit',
      'COPY src/ /app/src/: miss (COPY src/: src/app.ts changed)',
      'ENV MODE=test: miss (previous layer changed)',
    ]);
    expect(second.result.digest).not.toBe(first.result.digest);
    // The layers below the changed COPY are the very same blobs.
    const firstLayers = first.result.steps.map((s) => s.layer?.descriptor?.digest).filter(Boolean);
    const secondLayers = second.result.steps.map((s) => s.layer?.descriptor?.digest).filter(Boolean);
    expect(secondLayers.slice(0, 2)).toEqual(firstLayers.slice(0, 2));
    expect(secondLayers[2]).not.toBe(firstLayers[2]);

    // Adding and removing a file are named too.
    await writeFile(join(ctx, 'src/new.ts'), 'new\n');
    expect(outcome(await runBuild(options))[2]).toBe('COPY src/ /app/src/: miss (COPY src/: src/new.ts added)');
    await rm(join(ctx, 'src/lib.ts'));
    expect(outcome(await runBuild(options))[2]).toBe('COPY src/ /app/src/: miss (COPY src/: src/lib.ts removed)');
  });

  it('a step that misses after cached steps writes the layer a cold build writes (lazy and unpacked stages)', async () => {
    const dockerfiles = {
      // No RUN: the base's layers are never fetched; /etc is the base's, unknown to the build.
      lazy: ['ARG BASE', 'FROM ${BASE}', 'COPY a.txt /etc/a.txt', 'WORKDIR /srv', 'COPY b.txt /etc/b.txt', 'COPY c.txt ./', ''],
      // A RUN: the base is unpacked; after cached steps, the miss unpacks the cached layers first.
      unpacked: ['ARG BASE', 'FROM ${BASE}', 'COPY a.txt /a.txt', 'RUN mkdir -p /data && cp /a.txt /data/copy', 'COPY b.txt /etc/b.txt', 'COPY c.txt /data/', ''],
    };
    for (const [name, lines] of Object.entries(dockerfiles)) {
      const files = { Dockerfile: lines.join('\n'), 'a.txt': 'a\n', 'b.txt': 'b\n', 'c.txt': 'c\n' };
      const ctx = await writeContext(suite, files);
      const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, ...registry() };
      const cacheDir = freshCache();
      await runBuild({ ...options, cacheDir });
      await writeFile(join(ctx, 'b.txt'), 'b, changed\n');
      const warm = await runBuild({ ...options, cacheDir });
      expect(steps(warm).map((s) => s.cache.hit), name).toEqual([true, true, false, false]);
      const cold = await runBuild({ ...options, cacheDir: freshCache() });
      expect(warm.result.digest, name).toBe(cold.result.digest);
      expect(warm.events.some((e) => e.type === 'layer-fetched'), name).toBe(false);
    }
  });

  it('a build arg change invalidates only the steps that use it', async () => {
    const ctx = await writeContext(suite, {
      Dockerfile: ['ARG BASE', 'FROM ${BASE}', 'ARG VERSION=1', 'COPY a.txt /a.txt', 'LABEL stamp=fixed', 'RUN echo "$VERSION" > /version', ''].join('\n'),
      'a.txt': 'a\n',
    });
    const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, cacheDir: freshCache(), ...registry() };
    await runBuild(options);
    const changed = await runBuild({ ...options, buildArgs: { BASE: suite.busybox, VERSION: '2' } });
    expect(outcome(changed)).toEqual([
      'ARG VERSION=1: miss (build arg VERSION changed)',
      'COPY a.txt /a.txt: hit',
      'LABEL stamp=fixed: hit',
      'RUN echo "$VERSION" > /version: miss (build arg VERSION changed)',
    ]);
  });

  it('the base image digest is an input of the first step', async () => {
    const ctx = await writeContext(suite, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
    const cacheDir = freshCache();
    await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, cacheDir, ...registry() });
    // The same busybox from an OCI layout has the same digest: still a hit.
    const layout = await runBuild({ context: ctx, buildArgs: { BASE: 'local' }, contexts: { local: `oci:${suite.busyboxLayout}` }, cacheDir });
    expect(outcome(layout)).toEqual(['COPY a.txt /a.txt: hit']);
    // FROM scratch is another base.
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
    const scratch = await runBuild({ context: ctx, cacheDir });
    expect(outcome(scratch)).toEqual(['COPY a.txt /a.txt: miss (base changed)']);
  });

  it('--no-cache runs every step and still writes the cache; --no-cache-filter runs only the named stage', async () => {
    const ctx = await writeContext(suite, {
      Dockerfile: ['ARG BASE', 'FROM ${BASE} AS gen', 'RUN cat /proc/sys/kernel/random/uuid > /stamp', 'FROM ${BASE}', 'COPY a.txt /a.txt', 'COPY --from=gen /stamp /stamp', ''].join('\n'),
      'a.txt': 'a\n',
    });
    const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, cacheDir: freshCache(), ...registry() };
    const first = await runBuild(options);
    const forced = await runBuild({ ...options, noCache: true });
    expect(steps(forced).map((s) => s.cache)).toEqual(steps(forced).map(() => ({ hit: false, reason: '--no-cache' })));
    expect(forced.result.digest).not.toBe(first.result.digest);
    // What --no-cache built is in the cache now.
    const after = await runBuild(options);
    expect(after.result.digest).toBe(forced.result.digest);
    expect(steps(after).every((s) => s.cache.hit)).toBe(true);

    const filtered = await runBuild({ ...options, noCacheFilter: ['gen'] });
    expect(outcome(filtered)).toEqual([
      'RUN cat /proc/sys/kernel/random/uuid > /stamp: miss (--no-cache-filter gen)',
      'COPY a.txt /a.txt: hit',
      'COPY --from=gen /stamp /stamp: miss (COPY /stamp: stage gen changed)',
    ]);
  });

  it('a touched file is still a hit; a rewrite with its mtime put back is still seen (the ctime moved)', async () => {
    const ctx = await writeContext(suite, { Dockerfile: 'FROM scratch\nCOPY data.txt /data.txt\n', 'data.txt': 'version-1\n' });
    const options: BuildOptions = { context: ctx, cacheDir: freshCache() };
    const first = await runBuild(options);
    const file = join(ctx, 'data.txt');
    const later = new Date(Date.now() + 60_000);
    await utimes(file, later, later);
    expect(outcome(await runBuild(options))).toEqual(['COPY data.txt /data.txt: hit']);

    const mtime = 1_700_000_000;
    await utimes(file, mtime, mtime);
    expect(outcome(await runBuild(options))).toEqual(['COPY data.txt /data.txt: hit']);
    const before = await stat(file, { bigint: true });
    await writeFile(file, 'version-2\n'); // same size
    await utimes(file, mtime, mtime);
    const after = await stat(file, { bigint: true });
    expect([after.size, after.mtimeNs]).toEqual([before.size, before.mtimeNs]);
    const rewritten = await runBuild(options);
    expect(outcome(rewritten)).toEqual(['COPY data.txt /data.txt: miss (COPY data.txt: data.txt changed)']);
    expect(rewritten.result.digest).not.toBe(first.result.digest);
  });

  it('an ADD of a URL without --checksum is never cached, and says why', async () => {
    const ctx = await writeContext(suite, { Dockerfile: `FROM scratch\nADD http://${suite.registry.host}/v2/ /v2.json\nCOPY a.txt /a.txt\n`, 'a.txt': 'a\n' });
    const options: BuildOptions = { context: ctx, cacheDir: freshCache() };
    await runBuild(options);
    const second = await runBuild(options);
    expect(steps(second)[0]!.cache).toEqual({ hit: false, reason: expect.stringContaining('a URL without --checksum is not cached') });
    // The steps above it cannot be found either: their parent is new every time.
    expect(steps(second)[1]!.cache.hit).toBe(false);
  });
});

describe('registry cache', () => {
  it('a fresh cache directory with --cache-from gives hits, the same digest, and fetches no layer', async () => {
    const ctx = await writeContext(suite, { Dockerfile: DOCKERFILE, 'a.txt': 'a\n', 'src/app.ts': 'export {}\n' });
    const cacheRepo = `${suite.registry.host}/cache/app`;
    const base: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, ...registry() };
    const first = await runBuild({ ...base, cacheDir: freshCache(), cacheTo: cacheRepo, outputs: [{ type: 'registry', reference: `${suite.registry.host}/app:one` }] });
    const exported = first.events.find((e) => e.type === 'cache-exported');
    expect(exported).toMatchObject({ reference: cacheRepo, entries: 4 });

    const second = await runBuild({ ...base, cacheDir: freshCache(), cacheFrom: [cacheRepo], outputs: [{ type: 'registry', reference: `${suite.registry.host}/app:two` }] });
    expect(outcome(second)).toEqual(steps(second).map((s) => `${s.instruction}: hit`));
    expect(second.result.digest).toBe(first.result.digest);
    expect(second.events.some((e) => e.type === 'layer-fetched' || e.type === 'log')).toBe(false);
    // The cached layers reached the new tag without being downloaded: skipped or mounted.
    const actions = second.events.filter((e): e is Extract<BuildEvent, { type: 'blob' }> => e.type === 'blob').map((e) => e.action);
    expect(actions).not.toContain('pushed');

    // Written to a layout, the blobs are read from the cache repository; the image is whole.
    const dir = join(suite.dir, 'registry-cache-layout');
    const third = await runBuild({ ...base, cacheDir: freshCache(), cacheFrom: [cacheRepo], outputs: [{ type: 'layout', dir }] });
    expect(third.result.digest).toBe(first.result.digest);
    await validateImage(await OciLayout.open(dir), third.result.manifest);
  });
});

describe('sharing work', () => {
  it('two concurrent builds of the same uncached Dockerfile in one process run each step once', async () => {
    const ctx = await writeContext(suite, {
      Dockerfile: ['ARG BASE', 'FROM ${BASE}', 'COPY a.txt /a.txt', 'RUN echo ran && cat /proc/sys/kernel/random/uuid > /stamp', ''].join('\n'),
      'a.txt': 'a\n',
    });
    const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, cacheDir: freshCache(), ...registry() };
    const [one, two] = await Promise.all([runBuild(options), runBuild(options)]);
    expect(one.result.digest).toBe(two.result.digest);
    const ran = [...one.events, ...two.events].filter((e) => e.type === 'log' && e.line === 'ran');
    expect(ran).toHaveLength(1);
    const misses = [...steps(one), ...steps(two)].filter((s) => !s.cache.hit);
    expect(misses).toHaveLength(2); // the COPY and the RUN, each once
    const fetched = [...one.events, ...two.events].filter((e) => e.type === 'layer-fetched');
    expect(new Set(fetched.map((e) => (e as { digest: string }).digest)).size).toBe(fetched.length);
  });

  it('the events of a cancelled build end, and its cache stays usable', async () => {
    const ctx = await writeContext(suite, { Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
    const cacheDir = freshCache();
    const job = build({ context: ctx, cacheDir });
    job.cancel();
    await expect(job.result).rejects.toMatchObject({ code: 'ABORTED' });
    const run = await runBuild({ context: ctx, cacheDir });
    expect(outcome(run)).toEqual(['COPY a.txt /a.txt: miss (not in cache)']);
    await expect(stat(join(cacheDir, 'prune.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
