import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AbortedError } from '../../../src/errors.js';
import {
  NamespaceExecutor,
  OverlaySnapshotter,
  RunSetupError,
  RuncExecutor,
  resolveUser,
  type RunExecutor,
  type Snapshotter,
} from '../../../src/build/run/index.js';
import { findExecutable } from '../../../src/build/run/host.js';
import { BASE_ENV, busyboxRoot, fixTimes, mountsMentioning, paths, processesWith, removeDir, runOnce, tempDir } from './fixtures.js';

// Real runs, as root, on this machine's kernel: both executors over an overlay snapshot of a
// busybox root. Every test also checks that nothing is left behind (see afterEach).

let base: string;
let layer0: string;
let layer1: string;
let bare: string;
let linked: string;
let runTmp: string;
let snapTmp: string;
let snapshotter: Snapshotter;

beforeAll(() => {
  base = tempDir('exec');
  layer0 = join(base, 'layer0');
  busyboxRoot(layer0);
  // A second layer, so "a file of a lower layer" is not always the bottom one.
  layer1 = join(base, 'layer1');
  mkdirSync(join(layer1, 'data'), { recursive: true });
  writeFileSync(join(layer1, 'data/layer1.txt'), 'from layer 1\n');
  fixTimes(layer1);
  // A root without /etc at all: the sandbox's /etc files must not leave /etc behind.
  bare = join(base, 'bare');
  busyboxRoot(bare, { etc: false });
  // /etc/hosts as a dangling symlink (as images with resolvconf or systemd-resolved have).
  linked = join(base, 'linked');
  mkdirSync(join(linked, 'etc'), { recursive: true });
  mkdirSync(join(linked, 'run'));
  symlinkSync('../run/network/hosts', join(linked, 'etc/hosts'));
  fixTimes(linked);
  runTmp = join(base, 'run-tmp');
  snapTmp = join(base, 'snap-tmp');
  mkdirSync(runTmp);
  mkdirSync(snapTmp);
  snapshotter = new OverlaySnapshotter({ workDir: snapTmp });
});

afterAll(() => removeDir(base));

afterEach(() => {
  // No work directory, snapshot or mount survives a run, whatever its outcome.
  expect(readdirSync(runTmp)).toEqual([]);
  expect(readdirSync(snapTmp)).toEqual([]);
  expect(mountsMentioning(base)).toEqual([]);
});

const executors: [string, () => RunExecutor][] = [
  ['namespace', () => new NamespaceExecutor({ tmpDir: runTmp })],
  ['runc', () => new RuncExecutor({ tmpDir: runTmp })],
];

describe.each(executors)('%s executor', (_name, make) => {
  const executor = make();
  const lowers = (): string[] => [layer0, layer1];

  it('records created, modified and deleted files and a replaced directory, and nothing of its own', async () => {
    const script = [
      'echo new > /new.txt',
      'echo changed > /data/keep.txt',
      'rm /data/remove.txt',
      'rm -rf /data/gone',
      'rm -rf /data/replaced && mkdir /data/replaced && echo fresh > /data/replaced/fresh.txt',
      'chmod 600 /data/append.txt',
    ].join(' && ');
    const out = await runOnce(executor, snapshotter, lowers(), { args: ['sh', '-c', script] });
    expect(out.exitCode).toBe(0);
    expect(new Set(paths(out.entries))).toEqual(
      new Set(['data', 'data/append.txt', 'data/.wh.gone', 'data/keep.txt', 'data/.wh.remove.txt', 'data/replaced', 'data/replaced/.wh..wh..opq', 'data/replaced/fresh.txt', 'new.txt']),
    );
    const byPath = new Map(out.entries.map((e) => [e.path, e]));
    expect(byPath.get('new.txt')).toMatchObject({ type: 'file', content: 'new\n', uid: 0, gid: 0, mode: 0o644 });
    expect(byPath.get('data/keep.txt')?.content).toBe('changed\n');
    expect(byPath.get('data/append.txt')).toMatchObject({ mode: 0o600, content: 'line 1\n' });
    for (const wh of ['data/.wh.gone', 'data/.wh.remove.txt', 'data/replaced/.wh..wh..opq']) {
      expect(byPath.get(wh)).toMatchObject({ type: 'file', size: 0, content: '' });
    }
    // Parents come before their children.
    const order = paths(out.entries);
    for (const [i, p] of order.entries()) {
      const slash = p.lastIndexOf('/');
      if (slash > 0) expect(order.indexOf(p.slice(0, slash))).toBeLessThan(i);
    }
  });

  it('records the whole new content of a file from a lower layer', async () => {
    const out = await runOnce(executor, snapshotter, lowers(), { args: ['sh', '-c', 'echo appended >> /data/layer1.txt'] });
    expect(out.exitCode).toBe(0);
    expect(out.entries.map((e) => [e.path, e.content])).toEqual([
      ['data', undefined],
      ['data/layer1.txt', 'from layer 1\nappended\n'],
    ]);
  });

  it('runs as the given user and groups; files it creates are theirs', async () => {
    const out = await runOnce(executor, snapshotter, lowers(), {
      args: ['sh', '-c', 'id -u; id -g; id -G; touch /tmp/owned; touch /root/denied 2>/dev/null || echo denied'],
      user: { uid: 1000, gid: 1000, additionalGids: [10, 50] },
    });
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toEqual(['1000', '1000', '1000 10 50', 'denied']);
    const owned = out.entries.find((e) => e.path === 'tmp/owned');
    expect(owned).toMatchObject({ uid: 1000, gid: 1000 });
  });

  it('resolves a USER name against the root it will run in', async () => {
    const snapshot = await snapshotter.prepare(lowers());
    try {
      const user = await resolveUser(snapshot.tree(), 'app');
      expect(user).toEqual({ uid: 1000, gid: 1000, additionalGids: [10, 50] });
      const lines: string[] = [];
      const result = await executor.run({ rootfs: snapshot.rootfs, args: ['id'], env: BASE_ENV, cwd: '/home/app', user }, { onOutput: (line) => lines.push(line) });
      expect(result.exitCode).toBe(0);
      // runc's rules (Docker's): the supplementary groups are those listing the user by name.
      expect(lines).toEqual(['uid=1000(app) gid=1000(app) groups=10(wheel),50(staff)']);
    } finally {
      await snapshot.release();
    }
  });

  it('creates a missing working directory and runs in it', async () => {
    const out = await runOnce(executor, snapshotter, lowers(), { args: ['pwd'], cwd: '/work/here' });
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toEqual(['/work/here']);
    expect(paths(out.entries)).toEqual(['work', 'work/here']);
  });

  it('passes exactly the environment it is given', async () => {
    process.env['STEVEDORE_TEST_LEAK'] = 'must not appear';
    try {
      const env = ['PATH=/bin', 'A=1', 'B=two words', 'EMPTY=', 'WITH_EQUALS=a=b'];
      const out = await runOnce(executor, snapshotter, lowers(), { args: ['env'], env });
      expect(out.exitCode).toBe(0);
      // HOME is added when missing, from the user's passwd entry, as runc does.
      expect([...out.stdout].sort()).toEqual([...env, 'HOME=/root'].sort());
      const asApp = await runOnce(executor, snapshotter, lowers(), { args: ['env'], env: ['PATH=/bin'], user: { uid: 1000, gid: 1000 } });
      expect(asApp.stdout.sort()).toEqual(['HOME=/home/app', 'PATH=/bin']);
    } finally {
      delete process.env['STEVEDORE_TEST_LEAK'];
    }
  });

  it('reports a non-zero exit status', async () => {
    const out = await runOnce(executor, snapshotter, lowers(), { args: ['sh', '-c', 'echo before; exit 7'] });
    expect(out.exitCode).toBe(7);
    expect(out.stdout).toEqual(['before']);
    const missing = await runOnce(executor, snapshotter, lowers(), { args: ['/no/such/program'] });
    expect(missing.exitCode).not.toBe(0);
  });

  it('streams stdout and stderr line by line, in order, while the command runs', async () => {
    const times: number[] = [];
    const start = Date.now();
    const out = await runOnce(
      executor,
      snapshotter,
      lowers(),
      { args: ['sh', '-c', 'for i in 1 2 3; do echo out$i; echo err$i >&2; done; printf partial; sleep 0.5; echo; echo late'] },
      { onOutput: () => times.push(Date.now() - start) },
    );
    expect(out.stdout).toEqual(['out1', 'out2', 'out3', 'partial', 'late']);
    expect(out.stderr).toEqual(['err1', 'err2', 'err3']);
    // The first lines arrived well before the command ended.
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(400);
  });

  it('has only a loopback interface with --network=none', async () => {
    const out = await runOnce(executor, snapshotter, lowers(), { args: ['sh', '-c', 'ls /sys/class/net; ip -o link show lo'], network: 'none' });
    expect(out.exitCode).toBe(0);
    expect(out.stdout[0]).toBe('lo');
    if (_name === 'runc' || findExecutable('ip') !== undefined) expect(out.stdout[1]).toMatch(/<[^>]*\bUP\b/);
    expect(out.entries).toEqual([]);
  });

  it('shares the host network by default and with --network=host', async () => {
    const host = readdirSync('/sys/class/net').sort();
    for (const network of ['default', 'host'] as const) {
      const out = await runOnce(executor, snapshotter, lowers(), { args: ['ls', '/sys/class/net'], network });
      expect(out.stdout.sort()).toEqual(host);
    }
  });

  it('forwards an SSH agent socket', async () => {
    const path = join(base, `agent-${_name}.sock`);
    const server = createServer((socket) => socket.end('agent says hi\n'));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const out = await runOnce(executor, snapshotter, lowers(), {
        args: ['sh', '-c', 'test -S /run/buildkit/ssh_agent.0 && echo socket'],
        mounts: [{ type: 'ssh', target: '/run/buildkit/ssh_agent.0', socket: path }],
      });
      expect(out.stdout).toEqual(['socket']);
      expect(out.entries).toEqual([]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('shows the host resolv.conf and hosts, its hostname, extra hosts, and commits none of them', async () => {
    const script = 'cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; cat /etc/hostname; hostname';
    const out = await runOnce(executor, snapshotter, lowers(), {
      args: ['sh', '-c', script],
      hostname: 'builder',
      extraHosts: [{ name: 'registry.test', address: '10.1.2.3' }],
    });
    expect(out.exitCode).toBe(0);
    const text = out.stdout.join('\n');
    const [resolv, hosts, names] = text.split('---');
    if (existsSync('/etc/resolv.conf')) expect(resolv!.trim()).toBe(readFileSync('/etc/resolv.conf', 'utf8').trim());
    expect(hosts).toContain('10.1.2.3\tregistry.test');
    expect(names!.trim().split('\n')).toEqual(['builder', 'builder']);
    expect(out.entries).toEqual([]);
  });

  it('leaves no /etc, /proc, /dev or /sys behind in a root that has none', async () => {
    const out = await runOnce(executor, snapshotter, [bare], { args: ['sh', '-c', 'cat /etc/hostname; ls /proc/self/ >/dev/null; echo ok > /dev/null'] });
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toEqual([hostname()]);
    expect(out.entries).toEqual([]);
  });

  it('runs on an empty root (FROM scratch) and leaves it empty', async () => {
    const out = await runOnce(executor, snapshotter, [], { args: ['/bin/sh', '-c', 'true'] });
    expect(out.exitCode).not.toBe(0);
    expect(out.entries).toEqual([]);
  });

  it('mounts over a symlinked /etc/hosts at its target inside the root, and removes what it created', async () => {
    const out = await runOnce(executor, snapshotter, [layer0, linked], { args: ['sh', '-c', 'grep -c localhost /etc/hosts >/dev/null && ls /run/network'], extraHosts: [{ name: 'a.test', address: '10.0.0.1' }] });
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toEqual(['hosts']);
    expect(out.entries).toEqual([]);
  });

  it('mounts a secret read-only for the user, never in the layer', async () => {
    const out = await runOnce(executor, snapshotter, lowers(), {
      args: ['sh', '-c', 'cat /run/secrets/token; echo; stat -c %a /run/secrets/token; echo x > /run/secrets/token || echo readonly'],
      user: { uid: 1000, gid: 1000 },
      mounts: [{ type: 'secret', target: '/run/secrets/token', content: new TextEncoder().encode('s3cr3t'), uid: 1000, gid: 1000, mode: 0o400 }],
    });
    expect(out.exitCode).toBe(0);
    expect(out.stdout).toEqual(['s3cr3t', '400', 'readonly']);
    expect(out.entries).toEqual([]);
  });

  it('keeps a cache mount between runs and out of the layer', async () => {
    const cache = join(base, `cache-${_name}`);
    mkdirSync(cache);
    const first = await runOnce(executor, snapshotter, lowers(), { args: ['sh', '-c', 'echo 1 > /var/cache/app/count'], mounts: [{ type: 'cache', source: cache, target: '/var/cache/app' }] });
    const second = await runOnce(executor, snapshotter, lowers(), { args: ['cat', '/var/cache/app/count'], mounts: [{ type: 'cache', source: cache, target: '/var/cache/app' }] });
    expect(first.exitCode).toBe(0);
    expect(second.stdout).toEqual(['1']);
    expect(first.entries).toEqual([]);
    expect(second.entries).toEqual([]);
    expect(readFileSync(join(cache, 'count'), 'utf8')).toBe('1\n');
  });

  it('binds host directories read-only, or writable with the writes discarded', async () => {
    const src = join(base, `bind-${_name}`);
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'host\n');
    writeFileSync(join(base, `bind-file-${_name}`), 'single\n');
    const ro = await runOnce(executor, snapshotter, lowers(), { args: ['sh', '-c', 'cat /mnt/src/f; echo x > /mnt/src/f'], mounts: [{ type: 'bind', source: src, target: '/mnt/src' }] });
    expect(ro.stdout).toEqual(['host']);
    expect(ro.exitCode).not.toBe(0);
    expect(ro.stderr.join('\n')).toMatch(/Read-only file system/);
    const rw = await runOnce(executor, snapshotter, lowers(), {
      args: ['sh', '-c', 'echo changed > /mnt/src/f && echo new > /mnt/src/g && cat /mnt/src/f && echo more >> /mnt/one && cat /mnt/one'],
      mounts: [
        { type: 'bind', source: src, target: '/mnt/src', readonly: false },
        { type: 'bind', source: join(base, `bind-file-${_name}`), target: '/mnt/one', readonly: false },
      ],
    });
    expect(rw.exitCode).toBe(0);
    expect(rw.stdout).toEqual(['changed', 'single', 'more']);
    expect(readdirSync(src)).toEqual(['f']);
    expect(readFileSync(join(src, 'f'), 'utf8')).toBe('host\n');
    expect(readFileSync(join(base, `bind-file-${_name}`), 'utf8')).toBe('single\n');
    expect(ro.entries).toEqual([]);
    expect(rw.entries).toEqual([]);
  });

  it('mounts a tmpfs, and a secret inside it', async () => {
    const out = await runOnce(executor, snapshotter, lowers(), {
      args: ['sh', '-c', 'echo x > /scratch/file && grep " /scratch " /proc/mounts | cut -d" " -f3; cat /scratch/in/secret'],
      mounts: [
        { type: 'tmpfs', target: '/scratch', sizeBytes: 8 * 1024 * 1024 },
        { type: 'secret', target: '/scratch/in/secret', content: new TextEncoder().encode('inner') },
      ],
    });
    expect(out.stdout).toEqual(['tmpfs', 'inner']);
    expect(out.entries).toEqual([]);
  });

  it('kills the whole process tree and unmounts everything when aborted', async () => {
    const controller = new AbortController();
    const marker = `43${_name === 'runc' ? '21' : '12'}`;
    const started = Date.now();
    const run = runOnce(executor, snapshotter, lowers(), { args: ['sh', '-c', `sleep ${marker} & sleep ${marker}; echo never`] }, { signal: controller.signal });
    // Abort once the command is really running.
    for (let i = 0; i < 100 && processesWith('sleep', marker).length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(processesWith('sleep', marker).length).toBe(2);
    controller.abort();
    await expect(run).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(5000);
    for (let i = 0; i < 50 && processesWith('sleep', marker).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(processesWith('sleep', marker)).toEqual([]);
  });

  it('dies with the Node process that started it: no process is left running', async () => {
    const marker = `55${_name === 'runc' ? '21' : '12'}`;
    const scratch = join(base, `orphan-${_name}`);
    mkdirSync(scratch);
    const script = join(base, `orphan-${_name}.mts`);
    const lib = resolve('src/build/run/index.ts');
    writeFileSync(
      script,
      [
        `import { NamespaceExecutor, OverlaySnapshotter, RuncExecutor } from ${JSON.stringify(lib)};`,
        `const snapshot = await new OverlaySnapshotter({ workDir: ${JSON.stringify(scratch)} }).prepare([${JSON.stringify(layer0)}]);`,
        `const executor = ${_name === 'runc' ? 'new RuncExecutor' : 'new NamespaceExecutor'}({ tmpDir: ${JSON.stringify(scratch)} });`,
        `await executor.run({ rootfs: snapshot.rootfs, args: ['sleep', '${marker}'], env: ['PATH=/bin'], cwd: '/', user: { uid: 0, gid: 0 } });`,
      ].join('\n'),
    );
    const node = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    node.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      // Starting node with tsx and mounting the overlay can take seconds on a loaded machine: wait
      // for the command (or for the script to die), not for a fixed time.
      const deadline = Date.now() + 45_000;
      while (processesWith('sleep', marker).length === 0 && node.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(processesWith('sleep', marker).length, stderr).toBe(1);
      node.kill('SIGKILL');
      for (let i = 0; i < 100 && processesWith('sleep', marker).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(processesWith('sleep', marker)).toEqual([]);
    } finally {
      if (node.exitCode === null && node.signalCode === null) node.kill('SIGKILL');
      // What the dead process could not clean up: runc's record of the container, the work and
      // snapshot directories (nothing of it is mounted on the host).
      for (const run of readdirSync(scratch).filter((name) => name.startsWith('stevedore-run-'))) {
        const state = join(scratch, run, 'state');
        if (!existsSync(state)) continue;
        for (const id of readdirSync(state)) execFileSync('runc', ['--root', state, 'delete', '--force', id], { stdio: 'ignore' });
      }
      removeDir(scratch);
    }
  }, 60_000);

  it('refuses an invalid specification and a missing bind source with RunSetupError', async () => {
    await expect(runOnce(executor, snapshotter, lowers(), { args: ['true'], cwd: 'relative' })).rejects.toBeInstanceOf(RunSetupError);
    await expect(runOnce(executor, snapshotter, lowers(), { args: ['true'], mounts: [{ type: 'bind', source: join(base, 'missing'), target: '/x' }] })).rejects.toThrow(/missing/);
  });
});
