import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build, type BuildEvent } from '../../src/build/index.js';
import { RegistryClientPool } from '../../src/registry/index.js';
import { validateImage } from '../../src/layers/index.js';
import { parseReference } from '../../src/oci/index.js';
import {
  failBuild,
  layerHeaders,
  layoutConfig,
  readTree,
  runBuild,
  skopeoInspect,
  startBuildSuite,
  unpackLayout,
  validateLayoutImage,
  writeContext,
  type BuildSuite,
} from './helpers.js';

const execFileAsync = promisify(execFile);

/**
 * The build engine's features beyond the differential corpus (what buildah 1.28 lacks or what only
 * Stevedore's events can show): lazy base layers and cross-repository mounts, determinism,
 * heredocs, --link, --parents, --exclude, symbolic --chmod, ADD of URLs and git repositories,
 * several outputs, ONBUILD from a base image, named contexts, cancellation.
 */

let suite: BuildSuite;
let outputs = 0;

beforeAll(async () => {
  suite = await startBuildSuite();
});

afterAll(async () => {
  await suite?.stop();
});

function context(files: Record<string, string>): Promise<string> {
  return writeContext(suite, files);
}

function out(name: string): string {
  return join(suite.dir, 'out', `${name}-${++outputs}`);
}

const registryOptions = (): { registry: { insecureRegistries: string[] }; cacheDir: string } => ({ registry: { insecureRegistries: [suite.registry.host] }, cacheDir: suite.cacheDir });

describe('base layers', () => {
  it('an image that only adds files to its base never downloads the base layers, and the push mounts them', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nCOPY . /app\nWORKDIR /app\nCMD ["ls"]\n', 'src/main.txt': 'main\n', 'README': 'readme\n' });
    const reference = `${suite.registry.host}/lazy/app:1`;
    const { result, events } = await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, outputs: [{ type: 'registry', reference }], ...registryOptions() });

    expect(events.filter((e) => e.type === 'layer-fetched')).toEqual([]);
    expect(events.filter((e) => e.type === 'rootfs-materialized')).toEqual([]);
    const mounted = events.filter((e): e is Extract<BuildEvent, { type: 'blob' }> => e.type === 'blob' && e.action === 'mounted');
    expect(mounted.map((e) => e.descriptor.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar+gzip']);

    const inspected = await skopeoInspect(reference);
    expect(inspected.Digest).toBe(result.digest);
    expect(inspected.Layers).toHaveLength(3); // busybox, COPY, WORKDIR
    const pool = new RegistryClientPool({ insecureRegistries: [suite.registry.host] });
    try {
      await validateImage(pool.repository(parseReference(reference)), result.manifest);
    } finally {
      await pool.close();
    }
  });

  it('a single file copied onto a path that may be a directory of the base fetches the base once, and lands inside it', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /tmp\nCOPY a.txt /tmp2\n', 'a.txt': 'a\n' });
    const dir = out('probe');
    const { events } = await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, outputs: [{ type: 'layout', dir }], ...registryOptions() });
    const materialized = events.filter((e) => e.type === 'rootfs-materialized');
    expect(materialized).toHaveLength(1);
    const tree = await readTree(await unpackLayout(dir, 'latest', join(dir, 'x')));
    expect(tree.get('tmp/a.txt')?.type).toBe('file');
    expect(tree.get('tmp')).toMatchObject({ type: 'directory', mode: 0o1777 });
    expect(tree.get('tmp2')?.type).toBe('file');
  });

  it('eager base layers give the same image as lazy ones when nothing is left to the base', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /etc/\nCOPY dir/ /srv/dir/\n', 'a.txt': 'a\n', 'dir/b': 'b\n' });
    const lazy = await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, ...registryOptions() });
    const eager = await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, baseLayers: 'eager', ...registryOptions() });
    expect(eager.events.some((e) => e.type === 'rootfs-materialized')).toBe(true);
    // /etc and /srv: an existing directory is left out lazily and kept as-is eagerly; /srv is new,
    // written 0755 root eagerly and created 0755 root by whoever unpacks the lazy layer.
    const lazyTree = await treeOf(lazy.result.digest, ctx, 'lazy');
    const eagerTree = await treeOf(eager.result.digest, ctx, 'eager');
    expect(lazyTree).toEqual(eagerTree);
  });
});

/** Builds the same context again to a layout (same digest expected) and returns its unpacked tree without times. */
async function treeOf(digest: string, ctx: string, label: string): Promise<Record<string, unknown>> {
  const dir = out(label);
  const { result } = await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, outputs: [{ type: 'layout', dir }], ...(label === 'eager' ? { baseLayers: 'eager' as const } : {}), ...registryOptions() });
  expect(result.digest).toBe(digest);
  return Object.fromEntries(await readTree(await unpackLayout(dir, 'latest', join(dir, 'x'))));
}

describe('determinism', () => {
  it('the same inputs give the same digest, from a fresh cache too; SOURCE_DATE_EPOCH sets created and clamps times', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY . /\n', 'a.txt': 'a\n', 'dir/b.txt': 'b\n' });
    const first = await runBuild({ context: ctx, cacheDir: join(suite.dir, 'cache-d1') });
    const second = await runBuild({ context: ctx, cacheDir: join(suite.dir, 'cache-d2') });
    expect(second.result.digest).toBe(first.result.digest);

    const dir = out('epoch');
    const epoch = 1_700_000_000;
    const dated = await runBuild({ context: ctx, buildArgs: { SOURCE_DATE_EPOCH: String(epoch) }, outputs: [{ type: 'layout', dir }], cacheDir: suite.cacheDir });
    expect(dated.result.digest).not.toBe(first.result.digest);
    const config = await layoutConfig(dir, 'latest');
    expect(config.created).toBe('2023-11-14T22:13:20Z');
    expect(config.history?.every((h) => h.created === '2023-11-14T22:13:20Z')).toBe(true);
    // The files were just written: their times are later than the epoch and clamped to it.
    const headers = await layerHeaders(dir, 'latest', -1);
    expect(headers.length).toBeGreaterThan(0);
    expect(headers.every((h) => h.mtime === epoch)).toBe(true);
  });
});

describe('COPY features', () => {
  it('heredocs, --link, --parents, --exclude and symbolic --chmod', async () => {
    const ctx = await context({
      'Dockerfile': [
        'ARG BASE',
        'FROM ${BASE}',
        'ARG NAME=world',
        'COPY <<EOF /etc/greeting',
        'hello $NAME',
        'EOF',
        'COPY --link a.txt /usr/local/share/linked.txt',
        'COPY --parents src/*/main.txt lib/./inner/x.txt /parents/',
        'COPY --exclude=*.log --exclude=skip . /excluded/',
        'COPY --chmod=u=rwx,go=rX tool /sym/tool',
        'COPY --chmod=a+x,o-r a.txt /sym/a',
        '',
      ].join('\n'),
      'a.txt': 'a\n',
      'src/one/main.txt': '1\n',
      'src/two/main.txt': '2\n',
      'src/two/other.txt': 'x\n',
      'lib/inner/x.txt': 'x\n',
      'debug.log': 'log\n',
      'skip/file': 's\n',
      'tool/run': '#!/bin/sh\n',
    });
    await chmod(join(ctx, 'tool/run'), 0o640);
    const dir = out('copy-features');
    const { events } = await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, outputs: [{ type: 'layout', dir }], ...registryOptions() });
    expect(events.some((e) => e.type === 'layer-fetched')).toBe(false);
    await validateLayoutImage(dir, 'latest');

    // --link: a layer of its own, parents written as BuildKit makes them (0755 root).
    const linked = await layerHeaders(dir, 'latest', 2);
    expect(linked.map((h) => [h.name.replace(/\/$/, ''), h.type, h.mode])).toEqual([
      ['usr', 'directory', 0o755],
      ['usr/local', 'directory', 0o755],
      ['usr/local/share', 'directory', 0o755],
      ['usr/local/share/linked.txt', 'file', 0o644],
    ]);

    const tree = await readTree(await unpackLayout(dir, 'latest', join(dir, 'x')));
    expect(await readFile(join(dir, 'x/rootfs/etc/greeting'), 'utf8')).toBe('hello world\n');
    expect(tree.get('etc/greeting')).toMatchObject({ type: 'file', mode: 0o644, uid: 0 });
    expect([...tree.keys()].filter((p) => p.startsWith('parents/')).sort()).toEqual([
      'parents/inner',
      'parents/inner/x.txt',
      'parents/src',
      'parents/src/one',
      'parents/src/one/main.txt',
      'parents/src/two',
      'parents/src/two/main.txt',
    ]);
    const excluded = [...tree.keys()].filter((p) => p.startsWith('excluded/'));
    expect(excluded).toContain('excluded/a.txt');
    expect(excluded).not.toContain('excluded/debug.log');
    expect(excluded.some((p) => p.startsWith('excluded/skip'))).toBe(false);
    expect(tree.get('sym/tool')).toMatchObject({ type: 'directory', mode: 0o755 });
    expect(tree.get('sym/tool/run')).toMatchObject({ type: 'file', mode: 0o744 });
    expect(tree.get('sym/a')).toMatchObject({ type: 'file', mode: 0o751 });
  });

  it('COPY --from a named image context and a named local directory', async () => {
    const local = await context({ 'shared/conf': 'conf\n' });
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY --from=bb /etc/passwd /passwd\nCOPY --from=localdir shared/conf /conf\n' });
    const dir = out('named');
    await runBuild({
      context: ctx,
      contexts: { bb: `docker-image://${suite.busybox}`, localdir: local },
      outputs: [{ type: 'layout', dir }],
      ...registryOptions(),
    });
    const rootfs = await unpackLayout(dir, 'latest', join(dir, 'x'));
    expect(await readFile(join(rootfs, 'passwd'), 'utf8')).toContain('nobody:x:65534');
    expect(await readFile(join(rootfs, 'conf'), 'utf8')).toBe('conf\n');
  });
});

describe('ADD of remote sources', () => {
  let server: Server;
  let origin: string;
  let repoDir: string;
  let commit: string;
  const payload = Buffer.from('remote payload\n');

  beforeAll(async () => {
    // A git repository served over git's "dumb" HTTP protocol, and a plain file.
    repoDir = join(suite.dir, 'git');
    const work = join(repoDir, 'work');
    await mkdir(join(work, 'sub'), { recursive: true });
    await writeFile(join(work, 'sub/file.txt'), 'from git\n');
    await writeFile(join(work, 'top.txt'), 'top\n');
    const git = (args: string[], cwd: string): Promise<unknown> =>
      execFileAsync('git', ['-c', 'user.name=t', '-c', 'user.email=t@e', '-c', 'init.defaultBranch=main', ...args], { cwd });
    await git(['init', '-q'], work);
    await git(['add', '.'], work);
    await git(['commit', '-q', '-m', 'one'], work);
    commit = ((await execFileAsync('git', ['rev-parse', 'HEAD'], { cwd: work })) as { stdout: string }).stdout.trim();
    await git(['clone', '-q', '--bare', work, join(repoDir, 'repo.git')], repoDir);
    await git(['update-server-info'], join(repoDir, 'repo.git'));
    await execFileAsync('tar', ['-czf', join(repoDir, 'archive.tar.gz'), '-C', join(work, 'sub'), 'file.txt']);
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/files/payload.txt') {
        res.writeHead(200, { 'last-modified': new Date(1_000_000_000 * 1000).toUTCString(), 'content-length': payload.length });
        res.end(payload);
        return;
      }
      if (url.pathname === '/redirect') {
        res.writeHead(302, { location: '/files/payload.txt' });
        res.end();
        return;
      }
      if (url.pathname === '/files/archive.tar.gz') {
        readFile(join(repoDir, 'archive.tar.gz')).then((data) => res.writeHead(200).end(data));
        return;
      }
      if (url.pathname.startsWith('/repo.git/')) {
        readFile(join(repoDir, decodeURIComponent(url.pathname))).then(
          (data) => res.writeHead(200).end(data),
          () => res.writeHead(404).end(),
        );
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    origin = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  it('ADD a URL (checksum verified, mode 0600, named after the URL) and a git repository', async () => {
    const sum = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
    const ctx = await context({
      'Dockerfile': `FROM scratch\nADD --checksum=${sum} ${origin}/files/payload.txt /downloads/\nADD ${origin}/redirect /renamed\nADD ${origin}/repo.git#main:sub /src/\n`,
    });
    const dir = out('remote');
    await runBuild({ context: ctx, outputs: [{ type: 'layout', dir }], cacheDir: suite.cacheDir });
    const rootfs = await unpackLayout(dir, 'latest', join(dir, 'x'));
    const tree = await readTree(rootfs);
    expect(tree.get('downloads/payload.txt')).toMatchObject({ type: 'file', mode: 0o600, uid: 0 });
    expect(await readFile(join(rootfs, 'renamed'), 'utf8')).toBe('remote payload\n');
    expect(await readFile(join(rootfs, 'src/file.txt'), 'utf8')).toBe('from git\n');
    expect(tree.has('src/top.txt')).toBe(false);
    expect([...tree.keys()].some((p) => p.includes('.git'))).toBe(false);
  });

  it('ADD --checksum=COMMIT of a git repository checks the commit out only if it is that one', async () => {
    const good = await context({ 'Dockerfile': `FROM scratch\nADD --checksum=${commit.slice(0, 12)} ${origin}/repo.git#main:sub /src/\n` });
    await runBuild({ context: good, cacheDir: suite.cacheDir });
    const wrong = 'f'.repeat(40);
    const bad = await context({ 'Dockerfile': `FROM scratch\nADD --checksum=${wrong} ${origin}/repo.git#main /src/\n` });
    const { error } = await failBuild({ context: bad, cacheDir: suite.cacheDir });
    expect(error).toMatchObject({ name: 'BuildStepError', code: 'CHECKSUM_MISMATCH', startLine: 2 });
    expect(String(error)).toContain(commit);
  });

  it('ADD keeps a downloaded archive as a file unless --unpack=true', async () => {
    const ctx = await context({
      'Dockerfile': `FROM scratch\nADD ${origin}/files/archive.tar.gz /kept/\nADD --unpack=true ${origin}/files/archive.tar.gz /unpacked/\n`,
    });
    const dir = out('unpack');
    await runBuild({ context: ctx, outputs: [{ type: 'layout', dir }], cacheDir: suite.cacheDir });
    const rootfs = await unpackLayout(dir, 'latest', join(dir, 'x'));
    expect((await readFile(join(rootfs, 'kept/archive.tar.gz'))).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect(await readFile(join(rootfs, 'unpacked/file.txt'), 'utf8')).toBe('from git\n');
  });

  it('a wrong --checksum fails the ADD line', async () => {
    const ctx = await context({ 'Dockerfile': `FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} ${origin}/files/payload.txt /x\n` });
    const { error } = await failBuild({ context: ctx, cacheDir: suite.cacheDir });
    expect(error).toMatchObject({ name: 'BuildStepError', code: 'CHECKSUM_MISMATCH', startLine: 2 });
  });
});

describe('outputs', () => {
  it('several registry references and a layout: each blob is uploaded once per registry, tags come last', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nCOPY big.bin /big.bin\n', 'big.bin': 'x'.repeat(300_000) });
    const refs = [`${suite.registry.host}/multi/one:a`, `${suite.registry.host}/multi/one:b`, `${suite.registry.host}/multi/two:c`];
    const dir = out('multi');
    const { result, events } = await runBuild({
      context: ctx,
      buildArgs: { BASE: suite.busybox },
      outputs: [...refs.map((reference) => ({ type: 'registry' as const, reference })), { type: 'layout', dir, tag: 'v1' }],
      ...registryOptions(),
    });
    const pushed = events.filter((e): e is Extract<BuildEvent, { type: 'blob' }> => e.type === 'blob' && e.action === 'pushed');
    const layer = result.steps.at(-1)!.layer!.descriptor!.digest;
    expect(pushed.filter((e) => e.descriptor.digest === layer)).toHaveLength(1);
    // The new layer streamed to the first registry while it was compressed, before the outputs ran.
    const early = events.findIndex((e) => e.type === 'blob' && e.action === 'pushed' && e.descriptor.digest === layer);
    expect(early).toBeGreaterThanOrEqual(0);
    expect(early).toBeLessThan(events.findIndex((e) => e.type === 'output-started'));
    for (const reference of refs) expect((await skopeoInspect(reference)).Digest).toBe(result.digest);
    await validateLayoutImage(dir, 'v1');
    expect(result.outputs).toHaveLength(4);
  });
});

describe('ONBUILD', () => {
  it("a base image's ONBUILD triggers run first and are not passed on", async () => {
    const parentCtx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nONBUILD COPY marker.txt /from-trigger.txt\nONBUILD ENV TRIGGERED=yes\n' });
    const parent = `${suite.registry.host}/onbuild/parent:1`;
    await runBuild({ context: parentCtx, buildArgs: { BASE: suite.busybox }, outputs: [{ type: 'registry', reference: parent }], ...registryOptions() });

    const childCtx = await context({ 'Dockerfile': `FROM ${parent}\nLABEL child=yes\n`, 'marker.txt': 'marker\n' });
    const dir = out('onbuild');
    const { result } = await runBuild({ context: childCtx, outputs: [{ type: 'layout', dir }], ...registryOptions() });
    expect(result.steps.map((s) => s.instruction)).toEqual(['COPY marker.txt /from-trigger.txt', 'ENV TRIGGERED=yes', 'LABEL child=yes']);
    const config = await layoutConfig(dir, 'latest');
    expect(config.config?.OnBuild).toBeUndefined();
    expect(config.config?.Env).toContain('TRIGGERED=yes');
    const rootfs = await unpackLayout(dir, 'latest', join(dir, 'x'));
    expect(await readFile(join(rootfs, 'from-trigger.txt'), 'utf8')).toBe('marker\n');
  });
});

describe('cancellation', () => {
  it('cancelling a running build kills the command, leaves no output and rejects with AbortedError', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nRUN sleep 60\n' });
    const dir = out('cancelled');
    const job = build({ context: ctx, buildArgs: { BASE: suite.busybox }, outputs: [{ type: 'layout', dir }], ...registryOptions() });
    const started = Date.now();
    for await (const event of job.events) {
      if (event.type === 'step-started' && event.instruction.startsWith('RUN')) {
        setTimeout(() => job.cancel(), 300);
      }
    }
    await expect(job.result).rejects.toMatchObject({ code: 'ABORTED' });
    expect(Date.now() - started).toBeLessThan(30_000);
    await expect(readFile(join(dir, 'index.json'))).rejects.toThrow();
  });
});

describe('RUN', () => {
  it('a cache mount persists between builds and stays out of the layer; a secret is readable and never in the image', async () => {
    const ctx = await context({
      'Dockerfile': [
        'ARG BASE',
        'FROM ${BASE}',
        'RUN --mount=type=cache,target=/cache echo run >> /cache/runs && cat /cache/runs | wc -l > /count',
        'RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /secret-length',
        '',
      ].join('\n'),
    });
    const secretFile = join(suite.dir, 'token');
    await writeFile(secretFile, 'hunter2');
    const options = { context: ctx, buildArgs: { BASE: suite.busybox }, secrets: { token: { file: secretFile } }, ...registryOptions() };
    await runBuild({ ...options, cacheDir: join(suite.dir, 'cache-run') });
    const dir = out('run-mounts');
    await runBuild({ ...options, cacheDir: join(suite.dir, 'cache-run'), noCache: true, outputs: [{ type: 'layout', dir }] });
    const rootfs = await unpackLayout(dir, 'latest', join(dir, 'x'));
    expect((await readFile(join(rootfs, 'count'), 'utf8')).trim()).toBe('2');
    expect((await readFile(join(rootfs, 'secret-length'), 'utf8')).trim()).toBe('7');
    const tree = await readTree(rootfs);
    expect(tree.has('cache/runs')).toBe(false);
    expect(tree.has('run/secrets/token')).toBe(false);
    for (const index of [-1, -2]) {
      for (const header of await layerHeaders(dir, 'latest', index)) expect(header.name).not.toMatch(/secrets|cache\/runs/);
    }
  });
});

describe('unpacked layers', () => {
  it('a layer copied into an existing directory keeps that directory as it is for later RUNs (regression: /tmp 1777)', async () => {
    const ctx = await context({ 'Dockerfile': 'ARG BASE\nFROM ${BASE}\nCOPY a.txt /tmp/\nUSER nobody\nRUN touch /tmp/by-nobody && ls -ld /tmp\n', 'a.txt': 'a\n' });
    const { events } = await runBuild({ context: ctx, buildArgs: { BASE: suite.busybox }, ...registryOptions() });
    const listing = events.find((e): e is Extract<BuildEvent, { type: 'log' }> => e.type === 'log' && e.line.includes('/tmp'));
    expect(listing?.line).toMatch(/^drwxrwxrwt/);
  });
});

describe('context symlinks', () => {
  it('a symlink inside a copied directory is copied as a symlink, even one pointing outside', async () => {
    const ctx = await context({ 'Dockerfile': 'FROM scratch\nCOPY dir /dir\n', 'dir/file': 'f\n' });
    await symlink('/etc/passwd', join(ctx, 'dir/abs-link'));
    await symlink('../../outside', join(ctx, 'dir/rel-link'));
    const dir = out('links');
    await runBuild({ context: ctx, outputs: [{ type: 'layout', dir }], cacheDir: suite.cacheDir });
    const tree = await readTree(await unpackLayout(dir, 'latest', join(dir, 'x')));
    expect(tree.get('dir/abs-link')).toMatchObject({ type: 'symlink', link: '/etc/passwd' });
    expect(tree.get('dir/rel-link')).toMatchObject({ type: 'symlink', link: '../../outside' });
  });
});
