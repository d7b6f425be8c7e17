import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NamespaceExecutor } from '../../../src/build/index.js';
import { run, startRegistry, tempDir, type TestRegistry } from '../../harness/index.js';
import { debianImage, debianUnavailable, pushDebianImage, type DebianImage } from '../../fixtures/make-debian.js';
import { layerHeaders, layoutManifest, readTree, runBuild, unpackLayout, validateLayoutImage, writeContext, type TreeEntry } from '../helpers.js';

/**
 * The everyday case: `RUN apt-get update && apt-get install ...` on a real Debian base (made by
 * `debootstrap --variant=minbase bookworm`, cached between runs: see make-debian.ts). The
 * package must run in the built image, apt's lists (removed in the same RUN) must not be in it,
 * and the image must match buildah's build of the same Dockerfile on the same base.
 *
 * It needs Debian's mirror (the RUN downloads packages) and, on a machine without the cached
 * base, debootstrap. Without them the suite is skipped, saying why; with `CI` set it fails
 * instead, since CI installs both.
 */

const PACKAGE = 'jq';
const DOCKERFILE = [
  'ARG BASE',
  'FROM ${BASE}',
  `RUN apt-get update && apt-get install -y --no-install-recommends ${PACKAGE} && rm -rf /var/lib/apt/lists/*`,
  '',
].join('\n');

/**
 * Files apt and dpkg write whose bytes depend on the moment or the run, never on the packages:
 * their presence, type, mode and owner are compared, their content is not.
 */
const VOLATILE_CONTENT: readonly { readonly pattern: RegExp; readonly reason: string }[] = [
  { pattern: /^var\/log\/(dpkg\.log|alternatives\.log|apt\/(history\.log|term\.log|eipp\.log\.xz))$/, reason: 'logs with the wall-clock time of the install' },
  { pattern: /^var\/cache\/ldconfig\/aux-cache$/, reason: "ldconfig's auxiliary cache records the inode numbers and times of the libraries it read" },
];

/** What buildah's chroot RUN leaves when the base lacks them (see the differential test). */
const BUILDAH_RUN_ARTIFACTS = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'run', 'dev', 'proc', 'sys'];

const unavailable = await debianUnavailable();
const required = (process.env.CI ?? '') !== '' && process.env.CI !== 'false';
if (unavailable !== undefined && !required) console.warn(`test/build/run-engine/debian.test.ts is skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined && !required)(`RUN apt-get install on Debian ${unavailable === undefined ? '' : `(cannot run: ${unavailable})`}`, () => {
  let registry: TestRegistry;
  let scratch: { path: string; remove: () => Promise<void> };
  let base: DebianImage;
  let baseRef: string;
  let context: string;
  let layout: string;
  let rootfs: string;
  let theirRootfs: string;

  beforeAll(async () => {
    if (unavailable !== undefined) throw new Error(`the Debian case must run on CI, but ${unavailable}`);
    scratch = await tempDir('stevedore-debian-');
    registry = await startRegistry();
    base = await debianImage();
    baseRef = `${registry.host}/debian:bookworm`;
    await pushDebianImage(base, baseRef, { insecureRegistries: [registry.host] });
    context = await writeContext({ dir: scratch.path }, { Dockerfile: DOCKERFILE });
    layout = join(scratch.path, 'stevedore');
    // The two builds at once: each spends much of its time waiting on the mirror.
    const began = Date.now();
    const [{ result }, buildahRootfs] = await Promise.all([
      runBuild({ context, buildArgs: { BASE: baseRef }, outputs: [{ type: 'layout', dir: layout }], registry: { insecureRegistries: [registry.host] }, cacheDir: join(scratch.path, 'cache') }),
      buildWithBuildah(),
    ]);
    console.info(`debian: base ${base.created ? 'made by debootstrap' : 'from the cache'}; Stevedore build ${(result.durationMs / 1000).toFixed(1)} s, both builds ${((Date.now() - began) / 1000).toFixed(1)} s`);
    await validateLayoutImage(layout, 'latest');
    rootfs = await unpackLayout(layout, 'latest', join(scratch.path, 'unpacked-stevedore'));
    theirRootfs = buildahRootfs;
  }, 300_000);

  /** buildah's build of the same Dockerfile on the same base, unpacked; returns the root. */
  async function buildWithBuildah(): Promise<string> {
    const buildahRoot = join(scratch.path, 'buildah');
    const buildah = (args: readonly string[]): Promise<{ stdout: string }> =>
      run('buildah', ['--storage-driver', 'vfs', '--root', join(buildahRoot, 'root'), '--runroot', join(buildahRoot, 'runroot'), ...args], { timeoutMs: 240_000 });
    const image = 'localhost/debian-apt:latest';
    await buildah(['bud', '--isolation', 'chroot', '--format', 'docker', '--timestamp', '0', '--identity-label=false', '--tls-verify=false', '--quiet', '--build-arg', `BASE=${baseRef}`, '-t', image, context]);
    const theirLayout = join(scratch.path, 'buildah-layout');
    await buildah(['push', '--quiet', image, `oci:${theirLayout}:latest`]);
    await buildah(['rmi', '--all', '--force']).catch(() => undefined);
    return unpackLayout(theirLayout, 'latest', join(scratch.path, 'unpacked-buildah'));
  }

  afterAll(async () => {
    await registry?.stop();
    await scratch?.remove();
  });

  it(`${PACKAGE} runs in the built image`, async () => {
    const lines: string[] = [];
    const result = await new NamespaceExecutor().run(
      {
        rootfs: { kind: 'directory', path: rootfs },
        args: ['/bin/sh', '-c', `echo '{"built":["by","stevedore"]}' | ${PACKAGE} -c .built && ${PACKAGE} --version`],
        env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        cwd: '/',
        user: { uid: 0, gid: 0 },
        network: 'none',
      },
      { onOutput: (line) => lines.push(line) },
    );
    expect(result.exitCode, lines.join('\n')).toBe(0);
    expect(lines[0]).toBe('["by","stevedore"]');
    expect(lines[1]).toMatch(/^jq-1\./);
  });

  it("apt's lists, removed in the same RUN, are in no layer", async () => {
    const manifest = await layoutManifest(layout, 'latest');
    expect(manifest.layers).toHaveLength(2);
    const headers = await layerHeaders(layout, 'latest', -1);
    // Only whiteouts (the base's empty `partial` directory, removed by the `rm -rf`).
    expect(headers.map((h) => h.name).filter((name) => /^var\/lib\/apt\/lists\/[^/]/.test(name) && !name.split('/').at(-1)!.startsWith('.wh.'))).toEqual([]);
    const tree = await readTree(rootfs);
    expect([...tree.keys()].filter((path) => path.startsWith('var/lib/apt/lists/'))).toEqual([]);
    // The package itself is in the RUN's layer.
    expect(headers.map((h) => h.name)).toContain(`usr/bin/${PACKAGE}`);
    expect(tree.get(`usr/bin/${PACKAGE}`)).toMatchObject({ type: 'file', mode: 0o755, uid: 0, gid: 0 });
  });

  it("matches buildah's build of the same Dockerfile on the same base", async () => {
    const ours = await readTree(rootfs);
    const theirs = await readTree(theirRootfs);
    for (const path of BUILDAH_RUN_ARTIFACTS) {
      const entry = theirs.get(path);
      if (entry !== undefined && !ours.has(path) && (entry.type === 'directory' || entry.size === 0)) theirs.delete(path);
    }
    const normalise = (tree: Map<string, TreeEntry>): Record<string, TreeEntry> => {
      const out: Record<string, TreeEntry> = {};
      for (const [path, entry] of tree) {
        out[path] = VOLATILE_CONTENT.some((v) => v.pattern.test(path)) ? { type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid } : entry;
      }
      return out;
    };
    expect(normalise(ours)).toEqual(normalise(theirs));
    // Not a comparison of two empty trees: the package and dpkg's record of it are there.
    expect(ours.get(`usr/bin/${PACKAGE}`)?.type).toBe('file');
    expect(await readFile(join(rootfs, 'var/lib/dpkg/info', `${PACKAGE}.list`), 'utf8')).toContain(`/usr/bin/${PACKAGE}`);
  });
});
