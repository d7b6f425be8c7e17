import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OciLayout, applyLayers, validateImage, type Descriptor } from '../../src/index.js';
import { stevedore } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'stevedore-append-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const root = join(dir, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  mkdirSync(root, { recursive: true });
  return root;
}

async function validate(layoutDir: string, tag: string): Promise<void> {
  const layout = await OciLayout.open(layoutDir);
  await validateImage(layout, await layout.resolve(tag));
}

describe('stevedore append', () => {
  const etc = tree('etc-layer', { 'etc/motd': 'welcome\n', 'etc/app.conf': 'x=1\n' });
  const app = tree('app-layer', { 'app/bin/run': '#!/bin/sh\necho run\n', 'app/data.txt': 'data\n' });
  symlinkSync('bin/run', join(app, 'app/start'));

  it('writes an image that umoci unpacks and skopeo inspects and copies', async () => {
    const r = await stevedore(['append', '--base', 'scratch', '--layer', etc, '--layer', app, '--output', 'oci:img:v1'], { cwd: dir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    await validate(join(dir, 'img'), 'v1');

    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${join(dir, 'img')}:v1`], { encoding: 'utf8' })) as { Digest: string; Layers: string[]; Architecture: string; Os: string };
    expect(inspect.Digest).toBe(r.stdout.trim());
    expect(inspect.Layers).toHaveLength(2);
    expect([inspect.Os, inspect.Architecture]).toEqual(['linux', 'amd64']);

    execFileSync('skopeo', ['copy', '--quiet', `oci:${join(dir, 'img')}:v1`, `oci:${join(dir, 'copied')}:v1`]);
    await validate(join(dir, 'copied'), 'v1');

    execFileSync('umoci', ['unpack', '--image', `${join(dir, 'img')}:v1`, join(dir, 'bundle')]);
    const rootfs = join(dir, 'bundle', 'rootfs');
    expect(readFileSync(join(rootfs, 'etc/motd'), 'utf8')).toBe('welcome\n');
    expect(readFileSync(join(rootfs, 'app/bin/run'), 'utf8')).toContain('echo run');
    expect(readlinkSync(join(rootfs, 'app/start'))).toBe('bin/run');
  });

  it('gives the same digest for the same inputs, whatever the wall clock and file times', async () => {
    const first = await stevedore(['append', '--base', 'scratch', '--layer', etc, '--output', 'oci:det-a:x'], { cwd: dir });
    utimesSync(join(etc, 'etc/motd'), new Date(), new Date(Date.now() - 3_600_000));
    const second = await stevedore(['append', '--base', 'scratch', '--layer', etc, '--output', 'oci:det-b:x'], { cwd: dir });
    expect(first.code).toBe(0);
    expect(second.stdout).toBe(first.stdout);

    const dated = await stevedore(['append', '--base', 'scratch', '--layer', etc, '--output', 'oci:det-c:x'], { cwd: dir, env: { SOURCE_DATE_EPOCH: '1700000000' } });
    expect(dated.stdout).not.toBe(first.stdout);
    const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${join(dir, 'det-c')}:x`], { encoding: 'utf8' })) as { created: string };
    expect(config.created).toBe('2023-11-14T22:13:20Z');
  });

  it('builds on a base from an OCI layout and keeps its layers', async () => {
    const base = await stevedore(['append', '--base', 'scratch', '--layer', etc, '--output', 'oci:base:1'], { cwd: dir });
    expect(base.code).toBe(0);
    const r = await stevedore(['append', '--base', 'oci:base:1', '--layer', app, '--output', 'oci:child:1', '--compression', 'zstd'], { cwd: dir });
    expect(r.stderr).toBe('');
    await validate(join(dir, 'child'), '1');
    const inspect = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${join(dir, 'child')}:1`], { encoding: 'utf8' })) as { layers: { mediaType: string }[] };
    expect(inspect.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip', 'application/vnd.oci.image.layer.v1.tar+zstd']);
    // umoci 0.4 cannot read zstd layers: unpack with our own extractor, which validateImage's
    // diffID check has already cross-checked against the config.
    const layout = await OciLayout.open(join(dir, 'child'));
    const manifest = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${join(dir, 'child')}:1`], { encoding: 'utf8' })) as { layers: Descriptor[] };
    const rootfs = join(dir, 'child-rootfs');
    mkdirSync(rootfs);
    await applyLayers(rootfs, manifest.layers.map((l) => ({ mediaType: l.mediaType, content: () => layout.fetch(l) })));
    expect(readFileSync(join(rootfs, 'etc/motd'), 'utf8')).toBe('welcome\n');
    expect(readFileSync(join(rootfs, 'app/data.txt'), 'utf8')).toBe('data\n');
  });

  it('refuses bad arguments with one line and exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['append', '--layer', etc], /--base is required/],
      [['append', '--base', 'scratch'], /at least one --layer/],
      [['append', '--base', 'scratch', '--layer', join(dir, 'missing')], /not a directory/],
      [['append', '--base', 'scratch', '--layer', etc, '--compression', 'lz4'], /--compression must be/],
      [['append', '--base', 'scratch', '--layer', etc, '--output', 'dir:/x'], /unsupported --output/],
      [['append', '--base', 'scratch', '--layer', etc, '--bogus'], /Unknown option/],
    ];
    for (const [args, message] of cases) {
      const r = await stevedore(args, { cwd: dir });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('leaves no layout behind when it fails', async () => {
    const bad = join(dir, 'bad-layer');
    mkdirSync(bad);
    // A name that is not UTF-8 cannot be recorded faithfully in a layer: the build refuses it.
    writeFileSync(Buffer.concat([Buffer.from(`${bad}/`), Buffer.from([0xff, 0xfe])]), 'x');
    const r = await stevedore(['append', '--base', 'scratch', '--layer', etc, '--layer', bad, '--output', 'oci:never:1'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/UTF-8/);
    expect(existsSync(join(dir, 'never'))).toBe(false);

    const missingBase = await stevedore(['append', '--base', 'oci:base:nope', '--layer', etc, '--output', 'oci:never2:1'], { cwd: dir });
    expect(missingBase.code).toBe(1);
    expect(missingBase.stderr).toMatch(/nope/);
    expect(existsSync(join(dir, 'never2'))).toBe(false);
  });
});
