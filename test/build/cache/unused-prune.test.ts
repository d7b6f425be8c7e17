import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildEvent, BuildOptions } from '../../../src/build/index.js';
import { RootfsCache } from '../../../src/build/rootfs.js';
import { cacheBounds } from '../../../src/build/prune.js';
import { pruneCacheMounts } from '../../../src/build/run-step.js';
import { markUsed, pruneUnused } from '../../../src/build/unused.js';
import { digestHex, digestOf, type Digest } from '../../../src/oci/index.js';
import { runBuild, startBuildSuite, writeContext, type BuildSuite } from '../helpers.js';

// What the cache directory keeps for builds beside the step cache (unpacked layers and chains,
// RUN cache mounts) is bounded by age: after a build, what no build has used for a while goes,
// and so do the leftovers of a process that died.

const roots: string[] = [];
let suite: BuildSuite;
beforeAll(async () => {
  suite = await startBuildSuite();
}, 120_000);
afterAll(async () => {
  await suite?.stop();
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

const HOUR = 60 * 60 * 1000;

/** An unpacked directory with its sidecar, last used `age` ms ago. */
async function unpacked(cacheDir: string, kind: 'layers' | 'chains', digest: Digest, age: number): Promise<string> {
  const dir = join(cacheDir, kind, 'sha256', digestHex(digest));
  await mkdir(join(dir, 'etc'), { recursive: true });
  await writeFile(join(dir, 'etc', 'file'), 'content');
  await writeFile(`${dir}.json`, JSON.stringify({ opaque: [] }));
  const when = new Date(Date.now() - age);
  await utimes(`${dir}.json`, when, when);
  return dir;
}

async function listing(cacheDir: string, kind: string): Promise<string[]> {
  return (await readdir(join(cacheDir, kind, 'sha256'))).sort();
}

describe('RootfsCache.prune', () => {
  it('removes what was not used since the cut-off and what a dead process left, and keeps the rest', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'stevedore-prune-'));
    roots.push(cacheDir);
    const old = digestOf('old layer');
    const recent = digestOf('recent layer');
    const oldChain = digestOf('old chain');
    await unpacked(cacheDir, 'layers', old, 10 * 24 * HOUR);
    await unpacked(cacheDir, 'layers', recent, HOUR);
    await unpacked(cacheDir, 'chains', oldChain, 10 * 24 * HOUR);
    const deadTemp = join(cacheDir, 'layers', 'sha256', '.tmp-0123456789abcdef');
    await mkdir(join(deadTemp, 'half'), { recursive: true });
    await utimes(deadTemp, new Date(Date.now() - 10 * 24 * HOUR), new Date(Date.now() - 10 * 24 * HOUR));
    const liveTemp = join(cacheDir, 'layers', 'sha256', '.tmp-fedcba9876543210');
    await mkdir(liveTemp);

    const cache = new RootfsCache(cacheDir);
    expect(await cache.prune(Date.now() - 7 * 24 * HOUR)).toBe(2);
    expect(await listing(cacheDir, 'layers')).toEqual([liveTemp.split('/').at(-1), digestHex(recent), `${digestHex(recent)}.json`].sort());
    expect(await listing(cacheDir, 'chains')).toEqual([]);
    expect(await cache.existingLayerDir(old)).toBeUndefined();
    expect((await cache.existingLayerDir(recent))?.path).toBe(join(cacheDir, 'layers', 'sha256', digestHex(recent)));
  });

  it('counts a look-up as a use, so a layer found by a build outlives the next prune', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'stevedore-prune-'));
    roots.push(cacheDir);
    const layer = digestOf('found again');
    await unpacked(cacheDir, 'layers', layer, 30 * 24 * HOUR);
    const cache = new RootfsCache(cacheDir);
    expect(await cache.existingLayerDir(layer)).toBeDefined();
    expect(await cache.prune(Date.now() - 7 * 24 * HOUR)).toBe(0);
    expect(await cache.existingLayerDir(layer)).toBeDefined();
    // A cut-off after the look-up removes it, and a later look-up finds nothing (the build unpacks again).
    expect(await cache.prune(Date.now() + 1000)).toBe(1);
    expect(await cache.existingLayerDir(layer)).toBeUndefined();
  });

  it('does nothing on a cache directory that has no unpacked layers yet', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'stevedore-prune-'));
    roots.push(cacheDir);
    expect(await new RootfsCache(cacheDir).prune(Date.now())).toBe(0);
  });
});

/** Makes every unpacked directory of the cache look unused for `age` ms. */
async function ageAll(cacheDir: string, age: number): Promise<void> {
  const when = new Date(Date.now() - age);
  for (const kind of ['layers', 'chains']) {
    const parent = join(cacheDir, kind, 'sha256');
    for (const name of await readdir(parent).catch(() => [])) if (name.endsWith('.json')) await utimes(join(parent, name), when, when);
  }
}

const unpackedDirs = async (cacheDir: string): Promise<string[]> => (await readdir(join(cacheDir, 'layers', 'sha256')).catch(() => [])).filter((n) => !n.endsWith('.json'));

describe('builds and unpacked layers', () => {
  it('a build keeps what it used, removes what nobody used for unusedMaxAgeSeconds, and a later build unpacks again', async () => {
    // A stage the image does not include lives only unpacked (its COPY and RUN layers), and its
    // RUN needs the base unpacked too.
    const files = {
      Dockerfile: ['ARG BASE', 'FROM ${BASE} AS tool', 'COPY a.txt /src/a.txt', 'RUN cp /src/a.txt /out.txt', 'FROM scratch', 'COPY --from=tool /out.txt /out.txt', ''].join('\n'),
      'a.txt': 'a\n',
    };
    const ctx = await writeContext(suite, files);
    const cacheDir = join(suite.dir, 'cache-prune');
    const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, registry: { insecureRegistries: [suite.registry.host] }, cacheDir, unusedMaxAgeSeconds: 0 };
    const hits = (events: readonly BuildEvent[]): boolean[] => events.flatMap((e) => (e.type === 'step-finished' && e.cache !== undefined ? [e.cache.hit] : []));

    const first = await runBuild(options);
    const used = await unpackedDirs(cacheDir);
    expect(used.length).toBeGreaterThanOrEqual(3); // the base, the COPY, the RUN
    await ageAll(cacheDir, 30 * 24 * HOUR);

    // The same build: all hits, and what the hits used stays.
    const second = await runBuild(options);
    expect(hits(second.events)).toEqual([true, true, true]);
    expect(second.result.digest).toBe(first.result.digest);
    expect((await unpackedDirs(cacheDir)).sort()).toEqual([...used].sort());

    // A build that uses none of them: they go.
    const other = await writeContext(suite, { Dockerfile: 'FROM scratch\nCOPY b.txt /b.txt\n', 'b.txt': 'b\n' });
    await runBuild({ ...options, context: other });
    expect(await unpackedDirs(cacheDir)).toEqual([]);

    // The first build again: the stage's cached steps find no layer and run again (a RUN made
    // again is a new layer, its output not being a function of its inputs, so the COPY --from
    // after it runs too); the image is the same.
    const again = await runBuild(options);
    expect(hits(again.events)).toEqual([false, false, false]);
    expect(again.result.digest).toBe(first.result.digest);
  });
});

describe('cacheBounds', () => {
  it('fills in the defaults and refuses bounds that are not sizes or ages', () => {
    expect(cacheBounds({})).toEqual({ cacheMaxBytes: 10 * 1024 ** 3, unusedMaxAgeSeconds: 7 * 24 * 3600 });
    expect(cacheBounds({ cacheMaxBytes: 0, unusedMaxAgeSeconds: 0 })).toEqual({ cacheMaxBytes: 0, unusedMaxAgeSeconds: 0 });
    expect(() => cacheBounds({ cacheMaxBytes: -1 })).toThrow(/cacheMaxBytes must be a whole number of bytes/);
    expect(() => cacheBounds({ cacheMaxBytes: 1.5 })).toThrow(/cacheMaxBytes/);
    expect(() => cacheBounds({ unusedMaxAgeSeconds: Number.NaN })).toThrow(/unusedMaxAgeSeconds must be a number of seconds/);
    expect(() => cacheBounds({ unusedMaxAgeSeconds: -60 })).toThrow(/unusedMaxAgeSeconds/);
  });
});

describe('pruneUnused', () => {
  it('puts back a directory used while it was being renamed aside, and removes one used only after', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'stevedore-prune-'));
    roots.push(parent);
    const old = new Date(Date.now() - 30 * 24 * HOUR);
    for (const name of ['raced', 'late']) {
      await mkdir(join(parent, name));
      await writeFile(join(parent, name, 'data'), name);
      await writeFile(join(parent, `${name}.mark`), '');
      await utimes(join(parent, `${name}.mark`), old, old);
    }
    // 'raced': another process marks it between the prune's rename and its second look. Its
    // look at the directory then comes after the put-back and finds it whole.
    const removed = await pruneUnused(parent, '.mark', Date.now() - HOUR, async (dir) => {
      if (dir.endsWith('raced')) await markUsed(`${dir}.mark`);
    });
    expect(removed).toBe(1);
    expect((await readdir(parent)).sort()).toEqual(['raced', 'raced.mark']);
    expect(await readFile(join(parent, 'raced', 'data'), 'utf8')).toBe('raced');
  });

  it('leaves a half-made directory to the process making it for a day, whatever the cut-off', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'stevedore-prune-'));
    roots.push(parent);
    const hoursAgo = (n: number): Date => new Date(Date.now() - n * HOUR);
    for (const [name, age] of [['.tmp-young', 2], ['.tmp-dead', 30], ['.trash-dead', 30]] as const) {
      await mkdir(join(parent, name));
      await utimes(join(parent, name), hoursAgo(age), hoursAgo(age));
    }
    await pruneUnused(parent, '.mark', Date.now());
    expect(await readdir(parent)).toEqual(['.tmp-young']);
  });
});

describe('RUN cache mounts', () => {
  it('prune by their marks: old ones go with their marks, recent ones and marks without age stay', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'stevedore-prune-'));
    roots.push(cacheDir);
    const mounts = join(cacheDir, 'mounts');
    for (const [name, age] of [['old', 30 * 24 * HOUR], ['recent', HOUR]] as const) {
      await mkdir(join(mounts, name, 'sub'), { recursive: true });
      await writeFile(join(mounts, name, 'sub', 'data'), name);
      await writeFile(join(mounts, `${name}.used`), '');
      const when = new Date(Date.now() - age);
      await utimes(join(mounts, `${name}.used`), when, when);
    }
    await writeFile(join(mounts, 'orphan.used'), ''); // a mark whose directory is gone
    await utimes(join(mounts, 'orphan.used'), new Date(0), new Date(0));
    expect(await pruneCacheMounts(cacheDir, Date.now() - 7 * 24 * HOUR)).toBe(1);
    expect((await readdir(mounts)).sort()).toEqual(['recent', 'recent.used']);
  });

  it('are removed once unused for unusedMaxAgeSeconds, and a later build starts them empty', async () => {
    const files = {
      Dockerfile: ['ARG BASE', 'FROM ${BASE}', 'RUN --mount=type=cache,target=/c,id=counter sh -c \'echo x >> /c/runs; wc -l < /c/runs > /runs\'', ''].join('\n'),
    };
    const ctx = await writeContext(suite, files);
    const cacheDir = join(suite.dir, 'cache-mount-prune');
    const options: BuildOptions = { context: ctx, buildArgs: { BASE: suite.busybox }, registry: { insecureRegistries: [suite.registry.host] }, cacheDir, unusedMaxAgeSeconds: 0, noCache: true };
    await runBuild(options);
    await runBuild(options);
    const mounts = join(cacheDir, 'mounts');
    const [dir] = (await readdir(mounts)).filter((n) => !n.endsWith('.used'));
    expect((await readFile(join(mounts, dir!, 'runs'), 'utf8')).split('\n').filter(Boolean)).toHaveLength(2);

    // Not used by a build (the one below uses no cache mount) for a month: it goes.
    const month = new Date(Date.now() - 30 * 24 * HOUR);
    await utimes(join(mounts, `${dir}.used`), month, month);
    const other = await writeContext(suite, { Dockerfile: 'FROM scratch\nCOPY b.txt /b.txt\n', 'b.txt': 'b\n' });
    await runBuild({ ...options, context: other });
    expect(await readdir(mounts)).toEqual([]);
    await runBuild(options);
    expect((await readFile(join(mounts, dir!, 'runs'), 'utf8')).split('\n').filter(Boolean)).toHaveLength(1);
  });
});
