import { createHash } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildStepError, RunFailedError, type BuildOptions } from '../../../src/build/index.js';
import { exists, failBuild, layoutConfig, readTree, runBuild, startBuildSuite, unpackLayout, validateLayoutImage, writeContext, type BuildSuite } from '../helpers.js';
import { interfaces, layerFiles, layoutBlobs, logLines } from './helpers.js';

/**
 * RUN through the whole engine (`build()`), on the busybox base in a test registry: mounts
 * (cache, secret, bind, tmpfs), the network modes, USER and WORKDIR, heredocs, failures, and
 * the same image from every executor and snapshot mode. What buildah can also build is compared
 * with it in the differential corpus (test/fixtures/builds/run-*); these are what only the
 * engine's own outputs and events can show.
 */

let suite: BuildSuite;
let outputs = 0;

beforeAll(async () => {
  suite = await startBuildSuite();
});

afterAll(async () => {
  await suite?.stop();
});

function out(name: string): string {
  return join(suite.dir, 'out', `${name}-${++outputs}`);
}

function options(context: string, extra: Partial<BuildOptions> = {}): BuildOptions {
  return { context, buildArgs: { BASE: suite.busybox }, registry: { insecureRegistries: [suite.registry.host] }, cacheDir: suite.cacheDir, ...extra };
}

/** Builds to a fresh layout and unpacks it; returns the layout and the unpacked root. */
async function buildAndUnpack(name: string, context: string, extra: Partial<BuildOptions> = {}): Promise<{ dir: string; rootfs: string; events: Awaited<ReturnType<typeof runBuild>>['events'] }> {
  const dir = out(name);
  const { events } = await runBuild(options(context, { ...extra, outputs: [{ type: 'layout', dir }] }));
  await validateLayoutImage(dir, 'latest');
  return { dir, rootfs: await unpackLayout(dir, 'latest', join(dir, 'unpacked')), events };
}

const text = (rootfs: string, path: string): Promise<string> => readFile(join(rootfs, path), 'utf8');

describe('RUN --mount=type=cache', () => {
  it('persists between two builds with the same cache directory, seeds from an image or a stage, and never reaches a layer', async () => {
    const context = await writeContext(suite, {
      Dockerfile: [
        'ARG BASE',
        'FROM ${BASE} AS seed',
        'RUN mkdir -p /seed && echo seeded > /seed/origin',
        'FROM ${BASE} AS final',
        'RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/runs && wc -l < /var/cache/app/runs > /runs',
        'RUN --mount=type=cache,target=/c,from=seed,source=/seed echo one >> /c/origin',
        'RUN --mount=type=cache,target=/c,from=seed,source=/seed,sharing=locked cat /c/origin > /seen',
        // An image named in the mount (`from` takes no variables).
        `RUN --mount=type=cache,target=/etc-cache,from=${suite.busybox},source=/etc grep -c : /etc-cache/passwd > /passwd-lines && echo x >> /etc-cache/added && wc -l < /etc-cache/added > /added`,
        'RUN --mount=type=cache,target=/owned,id=owned,uid=65534,gid=65534,mode=0700 stat -c "%u:%g %a" /owned > /owned-stat',
        '',
      ].join('\n'),
    });
    const cacheDir = join(suite.dir, 'cache-mounts');
    const first = await buildAndUnpack('cache-1', context, { cacheDir });
    expect((await text(first.rootfs, 'runs')).trim()).toBe('1');
    // Seeded from the stage's /seed when first made; shared by the two RUNs of this build.
    expect(await text(first.rootfs, 'seen')).toBe('seeded\none\n');
    expect((await text(first.rootfs, 'passwd-lines')).trim()).toBe('2');
    expect((await text(first.rootfs, 'added')).trim()).toBe('1');
    expect((await text(first.rootfs, 'owned-stat')).trim()).toBe('65534:65534 700');

    // The final stage's steps run again; the seed stage is a build-cache hit, the same version
    // of it as in the first build (as BuildKit: a cache seeded from a stage belongs to that version).
    const second = await buildAndUnpack('cache-2', context, { cacheDir, noCacheFilter: ['final'] });
    expect((await text(second.rootfs, 'runs')).trim()).toBe('2');
    // The same versions of the image and of the stage: the same seeded caches, still holding what the first build added.
    expect((await text(second.rootfs, 'added')).trim()).toBe('2');
    expect(await text(second.rootfs, 'seen')).toBe('seeded\none\none\n');

    for (const { dir, rootfs } of [first, second]) {
      const tree = await readTree(rootfs);
      for (const target of ['var/cache/app', 'c', 'etc-cache', 'owned']) expect(tree.has(target), target).toBe(false);
      for (const file of await layerFiles(dir, 'latest')) expect(file.header.name).not.toMatch(/^(var\/cache\/app|c|etc-cache|owned)(\/|$)/);
    }
  });

  it('a cache seeded from a missing source fails at its line', async () => {
    const context = await writeContext(suite, { Dockerfile: 'ARG BASE\nFROM ${BASE} AS seed\nFROM ${BASE}\nRUN --mount=type=cache,target=/c,from=seed,source=/nowhere true\n' });
    const { error } = await failBuild(options(context));
    expect(error).toBeInstanceOf(BuildStepError);
    expect(error).toMatchObject({ code: 'RUN_MOUNT_INVALID', startLine: 4 });
    expect((error as Error).message).toMatch(/\/nowhere not found in stage seed/);
  });
});

describe('RUN --mount=type=secret', () => {
  const SECRET = 's3cr3t-Value-1f0a9c';

  it('is readable during RUN and nowhere in the image, its config and history, or the events', async () => {
    const secretFile = join(suite.dir, 'secret-token');
    await writeFile(secretFile, `${SECRET}\n`);
    const context = await writeContext(suite, {
      Dockerfile: [
        'ARG BASE',
        'FROM ${BASE}',
        'RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -d" " -f1 > /token.sha256 && stat -c "%a %u" /run/secrets/token > /token.stat && cat /run/secrets/token',
        'RUN --mount=type=secret,id=token,env=TOKEN,target=/elsewhere/t test "$(printf %s "$TOKEN")" = "$(cat /elsewhere/t)" && echo "the token is $TOKEN" && echo ok > /env-ok',
        'RUN --mount=type=secret,id=absent true',
        '',
      ].join('\n'),
    });
    const { dir, rootfs, events } = await buildAndUnpack('secret', context, { secrets: { token: { file: secretFile } } });

    // Readable, with BuildKit's defaults (0400, root).
    expect((await text(rootfs, 'token.sha256')).trim()).toBe(createHash('sha256').update(`${SECRET}\n`).digest('hex'));
    expect((await text(rootfs, 'token.stat')).trim()).toBe('400 0');
    expect((await text(rootfs, 'env-ok')).trim()).toBe('ok');

    // The commands printed it: the log shows it masked.
    expect(logLines(events)).toContain('****');
    expect(logLines(events)).toContain('the token is ****');

    // Not in any layer (names or bytes), blob, or event.
    const tree = await readTree(rootfs);
    expect([...tree.keys()].filter((p) => /run\/secrets|elsewhere/.test(p))).toEqual([]);
    for (const file of await layerFiles(dir, 'latest')) {
      expect(file.header.name).not.toMatch(/run\/secrets|elsewhere/);
      expect(file.content.includes(SECRET), file.header.name).toBe(false);
    }
    for (const blob of await layoutBlobs(dir)) expect(blob.includes(SECRET)).toBe(false);
    const config = await layoutConfig(dir, 'latest');
    expect(JSON.stringify(config)).not.toContain(SECRET);
    expect(config.config?.Env?.some((e) => e.startsWith('TOKEN='))).toBe(false);
    expect(JSON.stringify(events)).not.toContain(SECRET);
  });

  it('a failing command that printed a secret does not put it in the error', async () => {
    const context = await writeContext(suite, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nRUN --mount=type=secret,id=token cat /run/secrets/token && exit 4\n' });
    const { error, events } = await failBuild(options(context, { secrets: { token: { value: SECRET } } }));
    expect(error).toMatchObject({ code: 'RUN_FAILED', startLine: 3 });
    expect(((error as BuildStepError).cause as RunFailedError).outputTail).toEqual(['****']);
    expect((error as Error).message).not.toContain(SECRET);
    expect(JSON.stringify(events)).not.toContain(SECRET);
  });

  it('a required secret that was not given fails at its line', async () => {
    const context = await writeContext(suite, { Dockerfile: 'ARG BASE\nFROM ${BASE}\n\nRUN --mount=type=secret,id=missing,required true\n' });
    const { error } = await failBuild(options(context));
    expect(error).toMatchObject({ code: 'RUN_MOUNT_INVALID', startLine: 4 });
  });
});

describe('RUN --mount=type=bind and tmpfs', () => {
  it('shows a stage, an image or the context, read-only unless rw, and discards what the command wrote', async () => {
    const context = await writeContext(suite, {
      'Dockerfile': [
        'ARG BASE',
        'FROM ${BASE} AS builder',
        'RUN mkdir -p /out && echo built > /out/artifact && ln -s /out/artifact /artifact-link',
        'FROM ${BASE}',
        'RUN --mount=type=bind,from=builder,source=/out,target=/mnt/out cp /mnt/out/artifact /artifact',
        // A symlink in the source is followed inside the stage's root.
        'RUN --mount=type=bind,from=builder,source=/artifact-link,target=/mnt/linked cat /mnt/linked > /linked',
        'RUN --mount=type=bind,source=files,target=/ctx cat /ctx/a.txt > /from-context && (touch /ctx/new 2>/dev/null && echo writable || echo read-only) > /ro',
        'RUN --mount=type=bind,from=builder,source=/out,target=/rw,rw echo changed > /rw/artifact && echo extra > /rw/extra && cat /rw/artifact > /rw-seen',
        'RUN --mount=type=bind,from=builder,source=/out,target=/again cat /again/artifact > /after-rw && ls /again > /listing',
        'RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/t && cat /scratch/t > /tmpfs-seen',
        '',
      ].join('\n'),
      'files/a.txt': 'from the context\n',
    });
    const { dir, rootfs } = await buildAndUnpack('bind', context);
    expect(await text(rootfs, 'artifact')).toBe('built\n');
    expect(await text(rootfs, 'linked')).toBe('built\n');
    expect(await text(rootfs, 'from-context')).toBe('from the context\n');
    expect((await text(rootfs, 'ro')).trim()).toBe('read-only');
    expect(await text(rootfs, 'rw-seen')).toBe('changed\n');
    // The rw writes were to a copy: the next mount of the same source sees the stage as it was.
    expect(await text(rootfs, 'after-rw')).toBe('built\n');
    expect((await text(rootfs, 'listing')).trim()).toBe('artifact');
    expect(await text(rootfs, 'tmpfs-seen')).toBe('temp\n');
    const tree = await readTree(rootfs);
    for (const target of ['mnt', 'ctx', 'rw', 'again', 'scratch']) expect(tree.has(target), target).toBe(false);
    for (const file of await layerFiles(dir, 'latest')) expect(file.header.name).not.toMatch(/^(mnt|ctx|rw|again|scratch)(\/|$)/);
  });

  it('a bind source missing from its stage fails at its line', async () => {
    const context = await writeContext(suite, { Dockerfile: 'ARG BASE\nFROM ${BASE} AS a\nFROM ${BASE}\nRUN --mount=type=bind,from=a,source=/missing,target=/m true\n' });
    const { error } = await failBuild(options(context));
    expect(error).toMatchObject({ code: 'RUN_MOUNT_INVALID', startLine: 4 });
    expect((error as Error).message).toMatch(/\/missing not found in stage a/);
  });
});

describe('RUN --network', () => {
  const hostHasNetwork = Object.keys(networkInterfaces()).some((name) => name !== 'lo');

  it.skipIf(!hostHasNetwork)('none has only the loopback interface; the default is the host network', async () => {
    const context = await writeContext(suite, {
      Dockerfile: ['ARG BASE', 'FROM ${BASE}', 'RUN --network=none cat /proc/net/dev > /none', 'RUN cat /proc/net/dev > /default', 'RUN --network=host cat /proc/net/dev > /host', ''].join('\n'),
    });
    const { rootfs } = await buildAndUnpack('network', context);
    expect(interfaces(await text(rootfs, 'none'))).toEqual(['lo']);
    const host = Object.keys(networkInterfaces()).sort();
    const seen = interfaces(await text(rootfs, 'default'));
    expect(seen.filter((name) => name !== 'lo').length).toBeGreaterThan(0);
    for (const name of host) expect(seen).toContain(name);
    expect(interfaces(await text(rootfs, 'host'))).toEqual(seen);
  });
});

describe('RUN as USER in WORKDIR', () => {
  it('runs as the user by name or id, in the working directory, and its files belong to that user', async () => {
    const context = await writeContext(suite, {
      Dockerfile: [
        'ARG BASE',
        'FROM ${BASE}',
        'RUN mkdir -m 1777 /shared',
        'USER nobody',
        'WORKDIR /shared/work',
        'RUN { id -u; id -g; pwd; echo "$HOME"; } > out && touch by-nobody',
        'USER 1234:5678',
        'WORKDIR relative',
        'RUN { id -u; id -g; pwd; } > out && touch by-1234',
        'USER root',
        'WORKDIR /',
        'RUN id -u > /root-id',
        '',
      ].join('\n'),
    });
    const { rootfs } = await buildAndUnpack('user', context);
    expect((await text(rootfs, 'shared/work/out')).split('\n')).toEqual(['65534', '65534', '/shared/work', '/nonexistent', '']);
    expect((await text(rootfs, 'shared/work/relative/out')).split('\n')).toEqual(['1234', '5678', '/shared/work/relative', '']);
    expect((await text(rootfs, 'root-id')).trim()).toBe('0');
    const tree = await readTree(rootfs);
    expect(tree.get('shared/work')).toMatchObject({ type: 'directory', uid: 65534, gid: 65534 });
    expect(tree.get('shared/work/by-nobody')).toMatchObject({ uid: 65534, gid: 65534 });
    expect(tree.get('shared/work/relative')).toMatchObject({ type: 'directory', uid: 1234, gid: 5678 });
    expect(tree.get('shared/work/relative/by-1234')).toMatchObject({ uid: 1234, gid: 5678 });
  });

  it('an unknown user name fails at the RUN line', async () => {
    const context = await writeContext(suite, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nUSER nosuchuser\nRUN true\n' });
    const { error } = await failBuild(options(context));
    expect(error).toMatchObject({ code: 'USER_NOT_FOUND', startLine: 4 });
  });
});

describe('RUN heredocs', () => {
  it('runs a script, a shebang script, and a command fed by heredocs', async () => {
    const context = await writeContext(suite, {
      Dockerfile: [
        'ARG BASE',
        'FROM ${BASE}',
        'ENV GREETING=hello',
        'RUN <<EOF',
        'echo "$GREETING from a heredoc" > /plain',
        'echo second line >> /plain',
        'EOF',
        'RUN <<EOT',
        '#!/bin/sh -e',
        'echo "shebang $0" > /shebang',
        'EOT',
        'RUN cat <<A > /one && cat <<"B" > /two',
        'first $GREETING',
        'A',
        'second $GREETING',
        'B',
        '',
      ].join('\n'),
    });
    const { rootfs } = await buildAndUnpack('heredoc', context);
    expect(await text(rootfs, 'plain')).toBe('hello from a heredoc\nsecond line\n');
    expect(await text(rootfs, 'shebang')).toBe('shebang /dev/pipes/EOT\n');
    expect(await text(rootfs, 'one')).toBe('first hello\n');
    expect(await text(rootfs, 'two')).toBe('second $GREETING\n');
    expect(await exists(join(rootfs, 'dev/pipes'))).toBe(false);
  });
});

describe('a failing RUN', () => {
  it('fails the build with the Dockerfile lines, the exit code and the last 20 lines, and writes no output', async () => {
    const context = await writeContext(suite, {
      Dockerfile: ['ARG BASE', 'FROM ${BASE}', 'RUN echo fine', 'RUN <<EOF', 'for i in $(seq 1 30); do echo "line $i"; done', 'echo "to stderr" >&2', 'exit 7', 'EOF', 'RUN echo never', ''].join('\n'),
    });
    const dir = out('failing');
    const { error, events } = await failBuild(options(context, { outputs: [{ type: 'layout', dir }] }));
    expect(error).toBeInstanceOf(BuildStepError);
    expect(error).toMatchObject({ code: 'RUN_FAILED', startLine: 4, endLine: 8 });
    const cause = (error as BuildStepError).cause as RunFailedError;
    expect(cause).toBeInstanceOf(RunFailedError);
    expect(cause.exitCode).toBe(7);
    expect(cause.outputTail).toEqual([...Array.from({ length: 19 }, (_, i) => `line ${i + 12}`), 'to stderr']);
    expect((error as Error).message).toMatch(/^Dockerfile:4-8: RUN <<EOF.*exit code 7/s);
    expect((error as Error).message).toContain('  | to stderr');
    expect(logLines(events)).not.toContain('never');
    expect(await exists(join(dir, 'index.json'))).toBe(false);
  });

  it('a command killed by a signal fails with 128 + the signal number', async () => {
    // Not the shell itself: as PID 1 of its namespace it cannot be sent SIGKILL from inside.
    const context = await writeContext(suite, { Dockerfile: "ARG BASE\nFROM ${BASE}\nRUN sh -c 'kill -9 $$'; exit $?\n" });
    const { error } = await failBuild(options(context));
    expect(error).toMatchObject({ code: 'RUN_FAILED', startLine: 3 });
    expect(((error as BuildStepError).cause as RunFailedError).exitCode).toBe(137);
  });

  it('--security=insecure is refused at its line, not ignored', async () => {
    const context = await writeContext(suite, { Dockerfile: 'ARG BASE\nFROM ${BASE}\nRUN --security=insecure true\n' });
    const { error } = await failBuild(options(context));
    expect(error).toMatchObject({ code: 'RUN_NOT_ENTITLED', startLine: 3 });
    expect((error as Error).message).toMatch(/^Dockerfile:3: RUN --security=insecure true: .*security\.insecure entitlement/);
  });

  it('--security=insecure runs with every capability once --allow security.insecure grants it', async () => {
    const context = await writeContext(suite, {
      Dockerfile: 'ARG BASE\nFROM ${BASE}\nRUN --security=insecure grep CapEff /proc/self/status > /cap-insecure\nRUN grep CapEff /proc/self/status > /cap-default\n',
    });
    const { rootfs } = await buildAndUnpack('insecure', context, { allow: ['security.insecure'], noCache: true });
    const capabilities = async (file: string): Promise<bigint> => BigInt(`0x${(await readFile(join(rootfs, file), 'utf8')).trim().split(/\s+/)[1]}`);
    const insecure = await capabilities('cap-insecure');
    const ordinary = await capabilities('cap-default');
    // Every capability the default set has, and more (CAP_SYS_ADMIN at least).
    expect(insecure & ordinary).toBe(ordinary);
    expect(insecure & (1n << 21n)).toBe(1n << 21n);
    expect(ordinary & (1n << 21n)).toBe(0n);
  });
});

describe('every executor and snapshot mode', () => {
  it('gives the same image', async () => {
    const context = await writeContext(suite, {
      'Dockerfile': [
        'ARG BASE',
        'FROM ${BASE}',
        'ARG VERSION=1',
        'RUN mkdir -p /app/data && echo "v$VERSION" > /app/version && chmod 0640 /app/version && chown 1000:1000 /app/data',
        'RUN rm /etc/group && echo changed >> /etc/passwd && ln -s /app/version /app/link',
        'COPY a.txt /app/',
        'USER nobody',
        'RUN touch /tmp/mine',
        '',
      ].join('\n'),
      'a.txt': 'a\n',
    });
    const digests = new Map<string, string>();
    for (const runExecutor of ['namespace', 'runc'] as const) {
      for (const snapshotter of ['overlay', 'copy'] as const) {
        const { result, events } = await runBuild(options(context, { runExecutor, snapshotter, cacheDir: join(suite.dir, `cache-${runExecutor}-${snapshotter}`) }));
        digests.set(`${runExecutor}/${snapshotter}`, result.digest);
        // The events say, once, which sandbox and which way of capturing changes ran the RUNs.
        expect(events.filter((e) => e.type === 'run-sandbox')).toEqual([expect.objectContaining({ executor: runExecutor, snapshotter })]);
      }
    }
    expect(new Set(digests.values()).size, JSON.stringify(Object.fromEntries(digests))).toBe(1);
  });
});
