import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { build, type BuildEvent } from '../../src/build/index.js';
import { stevedore } from './helpers.js';

// `stevedore prune`: the cache directory's bounds applied on demand.

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stevedore-prune-cli-'));
  roots.push(dir);
  return dir;
}

async function buildOnce(context: string, cacheDir: string): Promise<boolean[]> {
  const events: BuildEvent[] = [];
  await build({ context, cacheDir, outputs: [{ type: 'layout', dir: join(context, '..', `out-${Date.now()}`) }], onEvent: (e) => events.push(e) }).result;
  return events.flatMap((e) => (e.type === 'step-finished' ? [e.cache.hit] : []));
}

describe('stevedore prune', () => {
  it('--all empties the cache: the next build runs every step again', async () => {
    const dir = await scratch();
    const context = join(dir, 'ctx');
    await mkdir(context);
    await writeFile(join(context, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n');
    await writeFile(join(context, 'a.txt'), 'a');
    await writeFile(join(context, 'b.txt'), 'b');
    const cacheDir = join(dir, 'cache');
    expect(await buildOnce(context, cacheDir)).toEqual([false, false]);
    expect(await buildOnce(context, cacheDir)).toEqual([true, true]);

    // The default bounds keep a small, fresh cache whole.
    const kept = await stevedore(['prune', '--cache-dir', cacheDir], { cwd: dir });
    expect(kept.code).toBe(0);
    expect(kept.stdout).toContain('removed 0 step entries and 0 layers');
    expect(await buildOnce(context, cacheDir)).toEqual([true, true]);

    const blobs = join(cacheDir, 'blobs', 'sha256');
    expect(await readdir(blobs)).toHaveLength(2);
    const pruned = await stevedore(['prune', '--cache-dir', cacheDir, '--all'], { cwd: dir });
    expect(pruned.code).toBe(0);
    expect(pruned.stdout).toMatch(/removed 2 step entries and 2 layers \(\d/);
    expect(await readdir(blobs)).toEqual([]);
    expect(await buildOnce(context, cacheDir)).toEqual([false, false]);
  });

  it('leaves a cache directory that does not exist alone (a mistyped --cache-dir makes nothing)', async () => {
    const dir = await scratch();
    const result = await stevedore(['prune', '--cache-dir', 'no-such-cache', '--all'], { cwd: dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('removed 0 step entries');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses bad sizes, durations and combinations with exit code 2', async () => {
    const dir = await scratch();
    for (const args of [['--max-size', 'lots'], ['--unused-for', '7 weeks'], ['--all', '--max-size', '1G'], ['extra']]) {
      const result = await stevedore(['prune', '--cache-dir', dir, ...args], { cwd: dir });
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr, args.join(' ')).toMatch(/--max-size|--unused-for|--all|no arguments/);
    }
  });
});
