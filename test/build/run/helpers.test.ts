import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CopySnapshotter,
  DirectoryTree,
  LineSplitter,
  NamespaceExecutor,
  OverlaySnapshotter,
  RootPathError,
  RuncExecutor,
  RunSetupError,
  RunUnavailableError,
  UserNotFoundError,
  createExecutor,
  createSnapshotter,
  detectExecutors,
  resolveInRoot,
  resolveUser,
} from '../../../src/build/run/index.js';
import { busyboxRoot, removeDir, tempDir } from './fixtures.js';

let base: string;
let root: string;

beforeAll(() => {
  base = tempDir('helpers');
  root = join(base, 'root');
  busyboxRoot(root);
  // Symlinks that would leave the root if followed on the host.
  symlinkSync('/etc', join(root, 'abs-etc'));
  symlinkSync('../../../../etc', join(root, 'data/up'));
  symlinkSync('loop-b', join(root, 'loop-a'));
  symlinkSync('loop-a', join(root, 'loop-b'));
});

afterAll(() => removeDir(base));

describe('LineSplitter', () => {
  it('splits lines across chunks, drops CR before LF, keeps multibyte characters whole', () => {
    const lines: string[] = [];
    const splitter = new LineSplitter((line) => lines.push(line), 8);
    const bytes = Buffer.from('one\r\ntw€o\nthree-is-long\nlast');
    // Feed byte by byte: the euro sign (3 bytes) is cut across chunks.
    for (const b of bytes) splitter.push(Uint8Array.of(b));
    splitter.end();
    expect(lines).toEqual(['one', 'tw€o', 'three-is', '-long', 'last']);
  });
});

describe('resolveInRoot', () => {
  it('follows symlinks as a chroot would: absolute targets and .. stay inside the root', async () => {
    const tree = new DirectoryTree(root);
    expect((await resolveInRoot(tree, '/abs-etc/passwd')).path).toBe('etc/passwd');
    expect((await resolveInRoot(tree, '/data/up/passwd')).path).toBe('etc/passwd');
    expect((await resolveInRoot(tree, '/../../etc/group')).path).toBe('etc/group');
    const missing = await resolveInRoot(tree, '/abs-etc/new/deeper');
    expect(missing).toMatchObject({ path: 'etc/new/deeper', existing: 'etc', stat: undefined });
    expect((await resolveInRoot(tree, '/abs-etc', { followLast: false })).path).toBe('abs-etc');
  });

  it('refuses loops and files used as directories', async () => {
    const tree = new DirectoryTree(root);
    await expect(resolveInRoot(tree, '/loop-a/x')).rejects.toBeInstanceOf(RootPathError);
    await expect(resolveInRoot(tree, '/etc/passwd/x')).rejects.toThrow(/not a directory/);
  });
});

describe('resolveUser', () => {
  it('applies runc rules to names, numbers and groups', async () => {
    expect(await resolveUser(root, '')).toEqual({ uid: 0, gid: 0, additionalGids: [] });
    expect(await resolveUser(root, 'root')).toEqual({ uid: 0, gid: 0, additionalGids: [] });
    expect(await resolveUser(root, 'app')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 50] });
    expect(await resolveUser(root, '1000')).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 50] });
    expect(await resolveUser(root, '4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [] });
    expect(await resolveUser(root, 'app:staff')).toEqual({ uid: 1000, gid: 50, additionalGids: [] });
    expect(await resolveUser(root, 'nobody:77')).toEqual({ uid: 65534, gid: 77, additionalGids: [] });
    expect(await resolveUser(root, '4242:4343')).toEqual({ uid: 4242, gid: 4343, additionalGids: [] });
  });

  it('fails on unknown names with UserNotFoundError', async () => {
    await expect(resolveUser(root, 'nosuch')).rejects.toBeInstanceOf(UserNotFoundError);
    await expect(resolveUser(root, 'app:nosuch')).rejects.toThrow(/no group named "nosuch"/);
  });

  it('reads the files inside the root, even through a symlink that points outside it', async () => {
    const other = join(base, 'other');
    mkdirSync(join(other, 'real'), { recursive: true });
    mkdirSync(join(other, 'etc'));
    writeFileSync(join(other, 'real/passwd'), 'builder:x:321:654::/:/bin/sh\n');
    symlinkSync('/real/passwd', join(other, 'etc/passwd'));
    expect(await resolveUser(other, 'builder')).toEqual({ uid: 321, gid: 654, additionalGids: [] });
    // A root without /etc/passwd still takes numbers.
    expect(await resolveUser(join(base, 'nowhere'), '7:8')).toEqual({ uid: 7, gid: 8, additionalGids: [] });
  });
});

describe('detectExecutors', () => {
  it('finds both executors and both snapshot modes on this machine', async () => {
    const support = await detectExecutors();
    expect(support.executors.map((e) => [e.name, e.available, e.missing])).toEqual([
      ['namespace', true, []],
      ['runc', true, []],
    ]);
    expect(support.snapshotters.map((s) => [s.name, s.available])).toEqual([
      ['overlay', true],
      ['copy', true],
    ]);
    expect(await createExecutor()).toBeInstanceOf(NamespaceExecutor);
    expect(await createExecutor({ kind: 'runc' })).toBeInstanceOf(RuncExecutor);
    expect(await createSnapshotter()).toBeInstanceOf(OverlaySnapshotter);
    expect(await createSnapshotter({ mode: 'copy' })).toBeInstanceOf(CopySnapshotter);
  });

  it('names what is missing when an executor cannot run', async () => {
    const executor = new RuncExecutor({ runc: join(base, 'no-runc') });
    const spec = { rootfs: { kind: 'directory' as const, path: root }, args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0 } };
    const err = await executor.run(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunUnavailableError);
    expect((err as RunUnavailableError).code).toBe('RUN_UNAVAILABLE');
    expect((err as Error).message).toMatch(/no-runc not found/);
  });

  it('rejects a malformed specification before starting anything', async () => {
    const executor = new NamespaceExecutor();
    const spec = { rootfs: { kind: 'directory' as const, path: root }, args: ['true'], env: ['NOEQUALS'], cwd: '/', user: { uid: 0, gid: 0 } };
    await expect(executor.run(spec)).rejects.toBeInstanceOf(RunSetupError);
    await expect(executor.run({ ...spec, env: [], args: [] })).rejects.toThrow(/no command/);
  });
});
