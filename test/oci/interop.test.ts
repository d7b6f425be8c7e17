import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MemoryStore,
  OCI,
  OciLayout,
  copyGraph,
  fetchAll,
  fetchManifest,
  parseImageConfig,
  readAll,
  type Descriptor,
} from '../../src/oci/index.js';
import { makeImage, makeIndex, pushImage } from './fixtures.js';

// The outside view: layouts written by umoci and skopeo must read back, and layouts Stevedore
// writes must satisfy them. Both tools are installed by .ci/run (see ENVIRONMENT.md).
const run = promisify(execFile);

async function tool(command: string, ...args: string[]): Promise<string> {
  try {
    const { stdout } = await run(command, args, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stevedore-interop-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every blob of the graph under `root`, checked against its digest by reading it fully. */
async function readGraph(store: OciLayout | MemoryStore, root: Descriptor): Promise<Descriptor[]> {
  const seen: Descriptor[] = [root];
  const manifest = await fetchManifest(store, root);
  if (manifest.kind === 'index') {
    for (const child of manifest.value.manifests) seen.push(...(await readGraph(store, child)));
    return seen;
  }
  parseImageConfig(await fetchAll(store, manifest.value.config), manifest.value.config);
  seen.push(manifest.value.config);
  for (const layer of manifest.value.layers) {
    await readAll(await store.fetch(layer), 1 << 30);
    seen.push(layer);
  }
  return seen;
}

describe('interoperability with umoci and skopeo', () => {
  it('reads layouts umoci and skopeo write, and copies between them', async () => {
    const umociDir = join(dir, 'umoci');
    const bundle = join(dir, 'bundle');
    await tool('umoci', 'init', '--layout', umociDir);
    await tool('umoci', 'new', '--image', `${umociDir}:base`);
    await tool('umoci', 'unpack', '--image', `${umociDir}:base`, bundle);
    await writeFile(join(bundle, 'rootfs', 'greeting.txt'), 'hello from umoci\n');
    await tool('umoci', 'repack', '--image', `${umociDir}:withfile`, bundle);
    await tool('umoci', 'config', '--image', `${umociDir}:withfile`, '--config.cmd', '/bin/true');

    const umoci = await OciLayout.open(umociDir);
    expect(await umoci.tags()).toStrictEqual(['base', 'withfile']);
    const root = await umoci.resolve('withfile');
    const raw = JSON.parse(Buffer.from(await fetchAll(umoci, root)).toString());
    expect(raw.mediaType).toBeUndefined(); // umoci omits it; we must cope.
    const graph = await readGraph(umoci, root);
    expect(graph.filter((d) => d.mediaType === OCI.layerGzip)).toHaveLength(1);

    // skopeo copies umoci's layout into another one; ours reads it too.
    const skopeoDir = join(dir, 'skopeo');
    await tool('skopeo', 'copy', `oci:${umociDir}:withfile`, `oci:${skopeoDir}:copied`);
    const skopeo = await OciLayout.open(skopeoDir);
    expect(await skopeo.tags()).toStrictEqual(['copied']);
    const skopeoRoot = await skopeo.resolve('copied');
    await readGraph(skopeo, skopeoRoot);

    // copyGraph: umoci → memory → a fresh layout of ours, which skopeo and umoci then read.
    const memory = new MemoryStore();
    await copyGraph(umoci, memory, root);
    const oursDir = join(dir, 'ours');
    const ours = await OciLayout.open(oursDir, { create: true });
    await copyGraph(memory, ours, root);
    await ours.tag(root, 'roundtrip');
    await copyGraph(skopeo, ours, skopeoRoot);
    await ours.tag(skopeoRoot, 'via-skopeo');

    const inspected = JSON.parse(await tool('skopeo', 'inspect', `oci:${oursDir}:roundtrip`));
    expect(inspected.Digest).toBe(root.digest);
    await tool('umoci', 'unpack', '--image', `${oursDir}:via-skopeo`, join(dir, 'unpacked'));
    expect(await readFile(join(dir, 'unpacked', 'rootfs', 'greeting.txt'), 'utf8')).toBe('hello from umoci\n');
  });

  it('writes layouts that skopeo and umoci accept', async () => {
    const layoutDir = join(dir, 'layout');
    const layout = await OciLayout.open(layoutDir, { create: true });
    const image = await makeImage([{ 'etc/motd': 'first layer\n' }, { 'app/hello.txt': 'made by stevedore\n' }]);
    await pushImage(layout, image);
    await layout.tag(image.manifest, 'v1');
    const arm = await makeImage([{ 'app/hello.txt': 'arm\n' }], { os: 'linux', architecture: 'arm64' });
    await pushImage(layout, arm);
    const [index, indexBytes] = makeIndex([image, arm]);
    await layout.push(index, indexBytes);
    await layout.tag(index, 'multi');

    const inspected = JSON.parse(await tool('skopeo', 'inspect', `oci:${layoutDir}:v1`));
    expect(inspected.Digest).toBe(image.manifest.digest);
    expect(inspected.Layers).toStrictEqual(image.layers.map((l) => l.digest));
    expect(inspected.Architecture).toBe('amd64');
    const raw = JSON.parse(await tool('skopeo', 'inspect', '--raw', `oci:${layoutDir}:multi`));
    expect(raw.manifests).toHaveLength(2);

    // skopeo reads every blob (and verifies digests) when it copies.
    await tool('skopeo', 'copy', '--all', `oci:${layoutDir}:multi`, `oci:${join(dir, 'copy')}:multi`);

    const bundle = join(dir, 'bundle');
    await tool('umoci', 'unpack', '--image', `${layoutDir}:v1`, bundle);
    expect(await readFile(join(bundle, 'rootfs', 'app', 'hello.txt'), 'utf8')).toBe('made by stevedore\n');
    expect(await readFile(join(bundle, 'rootfs', 'etc', 'motd'), 'utf8')).toBe('first layer\n');
  });
});
