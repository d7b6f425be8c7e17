import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, chownSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LayerEntry, LayerSource } from '../../../src/layers/index.js';
import type { RunExecutor, RunOptions, RunSpec, Snapshot, Snapshotter } from '../../../src/build/run/index.js';

/** The busybox binary the fixture root is made of (Debian's busybox-static). */
export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

const APPLETS = ['sh', 'ls', 'cat', 'echo', 'touch', 'rm', 'mkdir', 'chmod', 'chown', 'id', 'sleep', 'wget', 'ip', 'hostname', 'env', 'pwd', 'mv', 'ln', 'printf', 'test', 'true', 'false', 'stat', 'sort', 'grep', 'mount', 'wc', 'head', 'tr', 'seq', 'dd'];

/** A fixed time for fixture files, so two fixtures are identical. */
const FIXED = 1_600_000_000;

/**
 * A minimal busybox root: /bin with busybox and applet links, /etc/passwd and /etc/group (root,
 * nobody 65534, app 1000 with a supplementary group), /tmp, /root, /home/app, and a /data tree
 * for the change tests. No /proc, /dev or /sys: the sandbox must create them as stubs and leave
 * nothing behind.
 */
export function busyboxRoot(dir: string, options: { etc?: boolean } = {}): void {
  if (BUSYBOX === undefined) throw new Error('busybox-static is required for these tests');
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const applet of APPLETS) symlinkSync('busybox', join(dir, 'bin', applet));
  if (options.etc !== false) {
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n');
    writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nwheel:x:10:app\napp:x:1000:\nstaff:x:50:app,other\nnogroup:x:65534:\n');
    mkdirSync(join(dir, 'tmp'), { mode: 0o1777 });
    chmodSync(join(dir, 'tmp'), 0o1777);
    mkdirSync(join(dir, 'root'), { mode: 0o700 });
    mkdirSync(join(dir, 'home/app'), { recursive: true });
    chownSync(join(dir, 'home/app'), 1000, 1000);
    mkdirSync(join(dir, 'data/replaced/sub'), { recursive: true });
    writeFileSync(join(dir, 'data/keep.txt'), 'original\n');
    writeFileSync(join(dir, 'data/remove.txt'), 'remove me\n');
    writeFileSync(join(dir, 'data/append.txt'), 'line 1\n');
    writeFileSync(join(dir, 'data/replaced/old.txt'), 'old\n');
    writeFileSync(join(dir, 'data/replaced/sub/deep.txt'), 'deep\n');
    mkdirSync(join(dir, 'data/gone/inner'), { recursive: true });
    writeFileSync(join(dir, 'data/gone/inner/x'), 'x\n');
  }
  fixTimes(dir);
}

/** Gives every entry under `dir` (symlinks excepted) the same fixed time, children first. */
export function fixTimes(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) fixTimes(path);
    if (!entry.isSymbolicLink()) utimesSync(path, FIXED, FIXED);
  }
  utimesSync(dir, FIXED, FIXED);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `stevedore-test-${prefix}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** A layer entry with its content read, for assertions. */
export interface CollectedEntry {
  readonly path: string;
  readonly type: LayerEntry['type'];
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly linkname?: string | undefined;
  readonly content?: string | undefined;
  readonly xattrs?: Readonly<Record<string, Uint8Array>> | undefined;
}

export async function collect(source: LayerSource): Promise<CollectedEntry[]> {
  const out: CollectedEntry[] = [];
  for await (const entry of source) {
    let content: string | undefined;
    if (entry.open !== undefined) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.open()) chunks.push(Buffer.from(chunk));
      content = Buffer.concat(chunks).toString('utf8');
    } else if (entry.type === 'file') {
      content = '';
    }
    out.push({ path: entry.path, type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, size: entry.size, mtime: entry.mtime, linkname: entry.linkname, content, xattrs: entry.xattrs });
  }
  return out;
}

/** Paths of a diff, in order. */
export function paths(entries: readonly CollectedEntry[]): string[] {
  return entries.map((e) => e.path);
}

export interface Outcome {
  readonly exitCode: number;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly entries: CollectedEntry[];
}

export const BASE_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];

/** Prepares a snapshot over `lowers`, runs one command, collects output and the diff, releases. */
export async function runOnce(
  executor: RunExecutor,
  snapshotter: Snapshotter,
  lowers: readonly string[],
  spec: Partial<Omit<RunSpec, 'rootfs'>> & { readonly args: readonly string[] },
  options: RunOptions & { keep?: (snapshot: Snapshot) => Promise<void> } = {},
): Promise<Outcome> {
  const snapshot = await snapshotter.prepare(lowers);
  try {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const result = await executor.run(
      { rootfs: snapshot.rootfs, env: BASE_ENV, cwd: '/', user: { uid: 0, gid: 0 }, ...spec },
      {
        ...options,
        onOutput: (line, stream) => {
          (stream === 'stdout' ? stdout : stderr).push(line);
          options.onOutput?.(line, stream);
        },
      },
    );
    const entries = await collect(snapshot.diff());
    await options.keep?.(snapshot);
    return { exitCode: result.exitCode, stdout, stderr, entries };
  } finally {
    await snapshot.release();
  }
}

/** Lines of /proc/self/mountinfo that mention `fragment`. */
export function mountsMentioning(fragment: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((line) => line.includes(fragment));
}

/** PIDs of processes whose command line contains every one of `words`. */
export function processesWith(...words: string[]): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${name}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const args = cmdline.split('\0');
    if (words.every((w) => args.includes(w))) found.push(Number(name));
  }
  return found;
}

/** Makes a character device 0/0 (an overlay whiteout) with mknod. */
export function mknodWhiteout(path: string): void {
  execFileSync('mknod', [path, 'c', '0', '0']);
}
