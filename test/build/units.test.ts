import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planBuild, type PlanStep } from '../../src/dockerfile/index.js';
import { applyConfigStep, baseImageConfig, finalizeConfig, setEnv } from '../../src/build/config.js';
import { CopyPlan, RootfsNeeded } from '../../src/build/copy.js';
import { applyModeSpec, numericOwner, parseModeSpec, parseOwnerSpec } from '../../src/build/modes.js';
import { cleanPath, containsWildcards, goMatch, prefixMatch, splitWildcards } from '../../src/build/paths.js';
import { isGitSource, isHttpSource } from '../../src/dockerfile/index.js';
import { parseGitSource, urlFileName } from '../../src/build/remote.js';
import { directorySourceTree, resolveSourcePath } from '../../src/build/source-tree.js';
import { EMPTY_VIEW, KnownTree, LayeredView, resolveDestination, UNKNOWN_VIEW, type NodeInfo } from '../../src/build/view.js';
import { chainId } from '../../src/build/rootfs.js';
import { EventChannel } from '../../src/build/events.js';
import { digestOf, type Digest } from '../../src/oci/index.js';

/** The engine's pure parts: Go path matching, modes and owners, config steps, the copy planner's rules. */

describe('paths (Go semantics)', () => {
  it('cleans like path.Clean', () => {
    expect(cleanPath('/a/b/../c/./')).toBe('/a/c');
    expect(cleanPath('../x')).toBe('../x');
    expect(cleanPath('/../x')).toBe('/x');
    expect(cleanPath('')).toBe('.');
  });

  it('matches like filepath.Match', () => {
    expect(goMatch('*.txt', 'a.txt')).toBe(true);
    expect(goMatch('*.txt', 'dir/a.txt')).toBe(false);
    expect(goMatch('[ab].*', 'b.md')).toBe(true);
    expect(goMatch('[^ab].*', 'c.md')).toBe(true);
    expect(goMatch('[a-c]?', 'bz')).toBe(true);
    expect(goMatch('?.md', 'ab.md')).toBe(false);
    expect(goMatch('\\*', '*')).toBe(true);
    expect(goMatch('[', '[')).toBe(false); // malformed: matches nothing
    expect(goMatch('a-b.txt', 'a-b.txt')).toBe(true);
  });

  it('splits a source at its first wildcard component', () => {
    expect(splitWildcards('/src/*.go/x')).toEqual({ base: '/src', pattern: '*.go/x' });
    expect(splitWildcards('/*.txt')).toEqual({ base: '/', pattern: '*.txt' });
    expect(splitWildcards('/plain/path')).toEqual({ base: '/plain/path', pattern: '' });
    expect(containsWildcards('a\\*b')).toBe(false);
  });

  it('prefix-matches --parents patterns', () => {
    expect(prefixMatch('src/*/main.txt', 'src')).toEqual({ match: true, partial: true });
    expect(prefixMatch('src/*/main.txt', 'src/one')).toEqual({ match: true, partial: true });
    expect(prefixMatch('src/*/main.txt', 'src/one/main.txt')).toEqual({ match: true, partial: false });
    expect(prefixMatch('src/*/main.txt', 'lib')).toEqual({ match: false, partial: true });
  });
});

describe('modes and owners', () => {
  it('applies octal and symbolic --chmod', () => {
    expect(applyModeSpec(parseModeSpec('0755'), 0o644, false)).toBe(0o755);
    expect(applyModeSpec(parseModeSpec('4755'), 0o644, false)).toBe(0o4755);
    expect(applyModeSpec(parseModeSpec('u+x'), 0o644, false)).toBe(0o744);
    expect(applyModeSpec(parseModeSpec('go-rwx'), 0o755, true)).toBe(0o700);
    expect(applyModeSpec(parseModeSpec('a=rX'), 0o600, false)).toBe(0o444);
    expect(applyModeSpec(parseModeSpec('a=rX'), 0o700, true)).toBe(0o555);
    expect(applyModeSpec(parseModeSpec('g=u'), 0o740, false)).toBe(0o770);
    expect(applyModeSpec(parseModeSpec('u+s,+t'), 0o755, false)).toBe(0o5755);
    expect(() => parseModeSpec('u+q')).toThrow(/symbolic/);
  });

  it('parses --chown the way BuildKit does: a user id alone is also the group id', () => {
    expect(numericOwner(parseOwnerSpec('1000'))).toEqual({ uid: 1000, gid: 1000 });
    expect(numericOwner(parseOwnerSpec('1000:50'))).toEqual({ uid: 1000, gid: 50 });
    expect(parseOwnerSpec('app:staff')).toEqual({ user: { name: 'app' }, group: { name: 'staff' } });
    expect(() => parseOwnerSpec('a:b:c')).toThrow();
  });
});

describe('config', () => {
  const steps = (dockerfile: string): readonly PlanStep[] => planBuild(dockerfile, { baseImages: { base: { Env: ['PATH=/bin'] } } }).stages.at(-1)!.steps;

  it('replaces a variable in place, as BuildKit does', () => {
    expect(setEnv(['PATH=/bin', 'A=1', 'B=2'], 'PATH', '/x')).toEqual(['PATH=/x', 'A=1', 'B=2']);
    expect(setEnv(['A=1'], 'B', '2')).toEqual(['A=1', 'B=2']);
  });

  it('drops an inherited CMD on ENTRYPOINT unless the stage set CMD first', () => {
    let config = { Cmd: ['sh'] } as Record<string, unknown>;
    for (const step of steps('FROM base\nENTRYPOINT ["/bin/app"]\n')) config = applyConfigStep(config, step).config;
    expect(config).toEqual({ Entrypoint: ['/bin/app'] });
    config = { Cmd: ['sh'] };
    for (const step of steps('FROM base\nCMD ["x"]\nENTRYPOINT ["/bin/app"]\n')) config = applyConfigStep(config, step).config;
    expect(config).toEqual({ Cmd: ['x'], Entrypoint: ['/bin/app'] });
  });

  it('writes HEALTHCHECK durations in nanoseconds and leaves zero values out', () => {
    let config = {} as Record<string, unknown>;
    for (const step of steps('FROM base\nHEALTHCHECK --interval=5s CMD true\n')) config = applyConfigStep(config, step).config;
    expect(config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5_000_000_000 });
  });

  it("keeps a base config's known fields only, ensures PATH and never writes ArgsEscaped on Linux", () => {
    const base = baseImageConfig({
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['A=1'], Cmd: ['sh'], ArgsEscaped: true, Hostname: 'x' } as never,
      rootfs: { type: 'layers', diff_ids: [] },
      container_config: { Cmd: ['junk'] },
    } as never);
    expect(base.config).toEqual({ Env: ['A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] });
    expect('container_config' in base).toBe(false);
    const final = finalizeConfig({ ...base, config: { ...base.config, Labels: {}, Volumes: {} } }, '1970-01-01T00:00:00Z');
    expect(final.config).toEqual(base.config);
    expect(final.created).toBe('1970-01-01T00:00:00Z');
  });
});

describe('destination resolution', () => {
  const tree = new KnownTree();
  const dir: NodeInfo = { type: 'directory', mode: 0o755, uid: 0, gid: 0 };
  tree.set('usr', dir);
  tree.set('usr/lib', dir);
  tree.set('lib', { type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: 'usr/lib' });
  tree.set('abs', { type: 'symlink', mode: 0o777, uid: 0, gid: 0, linkname: '/usr/../../usr' });
  tree.set('file', { type: 'file', mode: 0o644, uid: 0, gid: 0 });

  it('follows symlinks inside the root, never above it', async () => {
    const view = new LayeredView([tree], EMPTY_VIEW);
    expect((await resolveDestination(view, 'lib/x', true)).path).toBe('usr/lib/x');
    expect((await resolveDestination(view, 'abs/lib', true)).path).toBe('usr/lib');
    expect((await resolveDestination(view, 'lib', false)).probe).toMatchObject({ state: 'present', node: { type: 'symlink' } });
    expect((await resolveDestination(view, 'missing/deeper', true)).probe).toEqual({ state: 'absent' });
    await expect(resolveDestination(view, 'file/x', true)).rejects.toMatchObject({ code: 'COPY_CONFLICT' });
  });

  it('is unknown past what a lazy root does not know', async () => {
    const view = new LayeredView([tree], UNKNOWN_VIEW);
    expect((await resolveDestination(view, 'lib/x', true)).probe).toEqual({ state: 'unknown' });
    expect((await resolveDestination(view, 'etc/passwd', true))).toEqual({ path: 'etc/passwd', probe: { state: 'unknown' } });
    expect((await resolveDestination(view, 'file', true)).probe).toMatchObject({ state: 'present' });
  });
});

describe('the copy planner on a lazy root', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stevedore-units-'));
    await mkdir(join(dir, 'src/sub'), { recursive: true });
    await writeFile(join(dir, 'src/a.txt'), 'a');
    await writeFile(join(dir, 'src/sub/b.txt'), 'b');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const entries = async (plan: CopyPlan): Promise<string[]> => {
    const names: string[] = [];
    for await (const entry of plan.layerSource()) names.push(`${entry.path}:${entry.type}:${entry.mode.toString(8)}:${entry.uid}`);
    return names;
  };

  it('leaves directories the base may have out of the layer, and writes what it copies', async () => {
    const tree = directorySourceTree(dir, 'test', { resetOwner: true });
    const plan = new CopyPlan({ view: UNKNOWN_VIEW, lazy: true, epoch: 0, timestamps: 'clamp' });
    await plan.copy(tree, await resolveSourcePath(tree, 'src', true, 'src'), '/src', '/opt/app/', { copyDirContents: true });
    expect(await entries(plan)).toEqual(['opt/app/a.txt:file:644:0', 'opt/app/sub:directory:755:0', 'opt/app/sub/b.txt:file:644:0']);
    const known = new Map(plan.nodes());
    expect(known.get('opt')).toMatchObject({ type: 'directory', implicit: true });
  });

  it('needs the base when a created directory would get another owner, or a file may land in a directory', async () => {
    const tree = directorySourceTree(dir, 'test', { resetOwner: true });
    const owned = new CopyPlan({ view: UNKNOWN_VIEW, lazy: true, epoch: 0, timestamps: 'clamp' });
    await expect(owned.copy(tree, await resolveSourcePath(tree, 'src', true, 'src'), '/src', '/opt/', { copyDirContents: true, owner: { uid: 1000, gid: 1000 } })).rejects.toBeInstanceOf(RootfsNeeded);
    const file = new CopyPlan({ view: UNKNOWN_VIEW, lazy: true, epoch: 0, timestamps: 'clamp' });
    await expect(file.copy(tree, await resolveSourcePath(tree, 'src/a.txt', true, 'src/a.txt'), '/src/a.txt', '/etc/app', { copyDirContents: true })).rejects.toBeInstanceOf(RootfsNeeded);
  });

  it('on a known root, creates missing parents 0755 owned by --chown', async () => {
    const tree = directorySourceTree(dir, 'test', { resetOwner: true });
    const plan = new CopyPlan({ view: EMPTY_VIEW, lazy: false, epoch: 0, timestamps: 'clamp' });
    await plan.copy(tree, await resolveSourcePath(tree, 'src/a.txt', true, 'src/a.txt'), '/src/a.txt', '/x/y/', { copyDirContents: true, owner: { uid: 7, gid: 8 } });
    expect(await entries(plan)).toEqual(['x:directory:755:7', 'x/y:directory:755:7', 'x/y/a.txt:file:644:7']);
  });
});

describe('sources', () => {
  it('tells git repositories from plain URLs, as BuildKit does', () => {
    expect(isGitSource('https://github.com/a/b.git')).toBe(true);
    expect(isGitSource('https://github.com/a/b.git#v1:dir')).toBe(true);
    expect(isGitSource('git@github.com:a/b.git')).toBe(true);
    expect(isGitSource('https://example.com/file.tar.gz')).toBe(false);
    expect(isHttpSource('https://example.com/file.tar.gz')).toBe(true);
    expect(parseGitSource('https://h/r.git#main:sub/dir')).toEqual({ remote: 'https://h/r.git', ref: 'main', subdir: 'sub/dir' });
    expect(urlFileName('https://h/path/to/file.bin?x=1')).toBe('file.bin');
    expect(urlFileName('https://h/')).toBe('__unnamed__');
  });
});

describe('plumbing', () => {
  it('chain IDs follow the image spec', () => {
    const a = digestOf('a') as Digest;
    const b = digestOf('b') as Digest;
    expect(chainId([a])).toBe(a);
    expect(chainId([a, b])).toBe(digestOf(`${a} ${b}`));
  });

  it('the event channel delivers buffered and live events, then ends', async () => {
    const channel = new EventChannel<number>();
    const iterable = channel.iterable();
    channel.push(1);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const n of iterable) seen.push(n);
    })();
    channel.push(2);
    await new Promise((r) => setTimeout(r, 5));
    channel.push(3);
    channel.close();
    await reading;
    expect(seen).toEqual([1, 2, 3]);
  });
});
