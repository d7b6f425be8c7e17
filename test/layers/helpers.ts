import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { pack } from 'tar-stream';

export const execFileAsync = promisify(execFile);
export const isRoot = process.getuid?.() === 0;

/** Temporary directories of a test file, removed by `cleanup()` (call it in afterEach/afterAll). */
export class TempDirs {
  readonly #dirs: string[] = [];

  async make(prefix = 'stevedore-layers-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.#dirs.push(dir);
    return dir;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.#dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** A Writable that keeps everything written to it. */
export class Collector extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk);
    callback();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export async function collect(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** `bytes` as a stream of `size`-byte chunks (the last one shorter): input cut anywhere. */
export async function* inChunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.byteLength; at += size) yield bytes.subarray(at, at + size);
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** One entry of a hand-made tar (tar-stream's header, with string or buffer content). */
export interface HandEntry {
  readonly name: string;
  readonly type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  readonly content?: string | Buffer;
  readonly linkname?: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly mtime?: Date;
  readonly devmajor?: number;
  readonly devminor?: number;
  readonly pax?: Record<string, string>;
}

/** Builds a tar with tar-stream, independently of the writer under test (for hostile inputs too). */
export async function handTar(entries: readonly HandEntry[]): Promise<Buffer> {
  const p = pack();
  const done = collect(p as unknown as AsyncIterable<Uint8Array>);
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = e.content === undefined ? undefined : Buffer.from(e.content);
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: e.name,
        type,
        mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        mtime: e.mtime ?? new Date(0),
        ...(e.linkname === undefined ? {} : { linkname: e.linkname }),
        ...(e.devmajor === undefined ? {} : { devmajor: e.devmajor, devminor: e.devminor ?? 0 }),
        ...(e.pax === undefined ? {} : { pax: e.pax }),
        ...(type === 'file' ? { size: content?.byteLength ?? 0 } : {}),
      };
      const callback = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (type === 'file') p.entry(header, content ?? Buffer.alloc(0), callback);
      else p.entry(header, callback).end(undefined);
    });
  }
  p.finalize();
  return done;
}

export interface SnapshotOptions {
  readonly mtimes?: boolean;
  readonly owners?: boolean;
}

/**
 * A comparable description of a tree: path → "type mode [owner] [mtime] detail", where detail
 * is the content hash, link target, device numbers, or for the second and later names of a
 * hardlinked file `link-of <first name>`.
 */
export async function snapshot(root: string, options: SnapshotOptions = {}): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const inodes = new Map<string, string>();
  const walk = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const abs = join(dir, name);
      const st = await lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      const meta = [options.owners ? `${st.uid}:${st.gid}` : '', options.mtimes && !st.isSymbolicLink() ? `t${Math.floor(st.mtimeMs / 1000)}` : ''].filter(Boolean).join(' ');
      let detail: string;
      if (st.isDirectory()) detail = `dir ${mode}`;
      else if (st.isSymbolicLink()) detail = `symlink -> ${await readlink(abs)}`;
      else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? inodes.get(key) : undefined;
        if (first !== undefined) detail = `file ${mode} link-of ${first}`;
        else {
          if (st.nlink > 1) inodes.set(key, path);
          detail = `file ${mode} ${sha256(await readFile(abs))}`;
        }
      } else if (st.isFIFO()) detail = `fifo ${mode}`;
      else if (st.isCharacterDevice()) detail = `char ${mode} ${st.rdev}`;
      else if (st.isBlockDevice()) detail = `block ${mode} ${st.rdev}`;
      else detail = 'other';
      out[path] = meta === '' ? detail : `${detail} ${meta}`;
      if (st.isDirectory()) await walk(abs, path);
    }
  };
  await walk(root, '');
  return out;
}

/** Runs a command with optional stdin; resolves with its output and exit code (never rejects). */
export function run(command: string, args: readonly string[], input?: Uint8Array): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() }));
    child.stdin.on('error', () => undefined); // the tool may exit before reading everything
    child.stdin.end(input);
  });
}

/** Names that need PAX or ustar's prefix field. */
export const LONG_DIR = `long-${'d'.repeat(60)}/${'e'.repeat(60)}`;
export const LONG_NAME = `${'n'.repeat(150)}.txt`;
export const LONG_TARGET = `${'t'.repeat(150)}/target`;

/**
 * A tree with every kind of entry a layer must carry: nested directories with unusual modes,
 * empty and multi-block files, setuid and sticky bits, relative, absolute, dangling and long
 * symlinks, a hardlinked pair, long and non-ASCII names, whiteout files and a fifo.
 */
export async function makeSpecialTree(root: string): Promise<void> {
  const { chmod, link, mkdir, symlink, writeFile } = await import('node:fs/promises');
  const { Rng, randomBytesOf } = await import('../fixtures/tree.js');
  const rng = new Rng(42);
  await mkdir(join(root, 'a/b/c'), { recursive: true });
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'a/hello.txt'), 'hello, layer\n');
  await chmod(join(root, 'a/hello.txt'), 0o640);
  await chmod(join(root, 'a'), 0o750);
  await mkdir(join(root, 'bin'));
  await writeFile(join(root, 'bin/tool'), '#!/bin/sh\necho tool\n');
  await chmod(join(root, 'bin/tool'), 0o755);
  await writeFile(join(root, 'bin/su'), 'setuid');
  await chmod(join(root, 'bin/su'), 0o4755);
  await mkdir(join(root, 'tmp'));
  await chmod(join(root, 'tmp'), 0o1777);
  await writeFile(join(root, 'a/b/c/big.bin'), randomBytesOf(rng, 3 * 1024 * 1024 + 123));
  await symlink('a/hello.txt', join(root, 'link-rel'));
  await symlink('/etc/passwd', join(root, 'link-abs'));
  await symlink('a', join(root, 'link-dir'));
  await symlink('does/not/exist', join(root, 'link-dangling'));
  await symlink(LONG_TARGET, join(root, 'link-long'));
  await writeFile(join(root, 'a/hard1'), 'shared inode');
  await mkdir(join(root, 'z'));
  await link(join(root, 'a/hard1'), join(root, 'z/hard2'));
  await mkdir(join(root, LONG_DIR), { recursive: true });
  await writeFile(join(root, LONG_DIR, LONG_NAME), 'long');
  await mkdir(join(root, 'unicodé'));
  await writeFile(join(root, 'unicodé/文件.txt'), 'unicode');
  await writeFile(join(root, '🐳.txt'), 'whale');
  await writeFile(join(root, '.wh.deleted'), '');
  await mkdir(join(root, 'opaque'));
  await writeFile(join(root, 'opaque/.wh..wh..opq'), '');
  await execFileAsync('mknod', [join(root, 'fifo'), 'p']);
}
