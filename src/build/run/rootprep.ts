import type { BigIntStats } from 'node:fs';
import { chmod, chown, mkdir, readdir, rmdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { normalizeArchivePath } from '../../layers/index.js';
import { RunSetupError } from './errors.js';
import { gnuTarHeaders } from './gnutar.js';
import { findExecutable } from './host.js';
import { isOpaqueValue } from './layerstack.js';
import { runToolChecked } from './process.js';
import { DirectoryTree, lstatOrUndefined, resolveInRoot } from './tree.js';

/**
 * Mount points a command needs but its image may lack (/proc, /etc/resolv.conf, a secret's
 * /run/secrets/ID...) are created before the command runs and removed after it, so they never
 * reach the layer: Docker and BuildKit commit none of them (buildah's chroot isolation does, and
 * the differential tests normalise that away).
 *
 * Creating an entry changes its parent directory's mtime and, on an overlay, copies the parent
 * (and its ancestors) up into the upper directory. Both are undone: the parent's mtime is put
 * back to what it was (or, when the command changed the directory too, to what the command
 * left), and a directory copied up only for a stub is removed from the upper directory again, so
 * the overlay shows the lower one and the diff holds nothing of it.
 */

export type StubKind = 'file' | 'dir';

/** Where the command's changes land: an overlay upper directory, or the root itself. */
export interface WritableLayer {
  readonly dir: string;
  readonly overlay: boolean;
  /** The xattr marking an opaque directory in `dir` (overlay only). */
  readonly opaqueXattr?: string | undefined;
}

interface TrackedDirectory {
  /** The directory before anything was created in it (through the merged view). */
  readonly original: BigIntStats;
  /** Present in the writable layer before setup (not merely copied up by it). */
  readonly inWritable: boolean;
  /** Its mtime once setup was done: a different one after the run means the command changed it. */
  setupMtimeNs?: bigint | undefined;
}

function ancestorsOf(path: string): string[] {
  const result = [''];
  const parts = path === '' ? [] : path.split('/');
  for (let i = 1; i <= parts.length; i++) result.push(parts.slice(0, i).join('/'));
  return result;
}

function depth(path: string): number {
  return path === '' ? 0 : path.split('/').length;
}

export class RootPreparer {
  readonly #created: { readonly path: string; readonly kind: StubKind }[] = [];
  readonly #createdSet = new Set<string>();
  readonly #dirs = new Map<string, TrackedDirectory>();

  /**
   * `view`: the merged root as the sandbox will see it (for an overlay, through
   * `/proc/PID/root` of a process in the sandbox's mount namespace).
   */
  constructor(
    readonly view: DirectoryTree,
    readonly writable: WritableLayer,
  ) {}

  /**
   * Makes `path` (absolute inside the root) exist as a `kind`, following symlinks inside the
   * root, and returns its resolved root-relative path. With `keep`, what is created stays (the
   * working directory, as runc creates it); otherwise it is a stub, removed by `cleanup`.
   */
  async ensure(path: string, kind: StubKind, keep = false): Promise<string> {
    const resolved = await resolveInRoot(this.view, path);
    if (resolved.stat !== undefined) {
      if (kind === 'dir' && !resolved.stat.isDirectory()) throw new RunSetupError(`${path} must be a directory in the image, but it is not`);
      if (kind === 'file' && resolved.stat.isDirectory()) throw new RunSetupError(`${path} is a directory in the image, but a file is mounted there`);
      return resolved.path;
    }
    if (!keep) await this.#track(resolved.existing);
    const missing = resolved.path.slice(resolved.existing.length).split('/').filter((p) => p !== '');
    let current = resolved.existing;
    for (const [i, part] of missing.entries()) {
      current = current === '' ? part : `${current}/${part}`;
      const abs = this.view.absolute(current);
      const last = i === missing.length - 1;
      if (last && kind === 'file') await writeFile(abs, '', { flag: 'wx', mode: 0o644 });
      else await mkdir(abs, { mode: 0o755 });
      if (!keep) {
        this.#created.push({ path: current, kind: last ? kind : 'dir' });
        this.#createdSet.add(current);
      }
    }
    return resolved.path;
  }

  /** Records `dir` and its ancestors before the first stub is created below them. */
  async #track(dir: string): Promise<void> {
    for (const path of ancestorsOf(dir)) {
      if (this.#dirs.has(path) || this.#createdSet.has(path)) continue;
      const original = await this.view.lstat(path);
      if (original === undefined) throw new RunSetupError(`/${path} vanished while the sandbox was prepared`);
      const inWritable = !this.writable.overlay || (await lstatOrUndefined(join(this.writable.dir, path))) !== undefined;
      this.#dirs.set(path, { original, inWritable });
    }
  }

  /** Call once setup is complete, before the command starts. */
  async sealSetup(): Promise<void> {
    for (const [path, tracked] of this.#dirs) tracked.setupMtimeNs = (await this.view.lstat(path))?.mtimeNs;
  }

  /**
   * Removes the stubs from the writable layer once the sandbox is gone (nothing is mounted on
   * them any more), restores directory times, and drops directories that were copied up only
   * for a stub.
   */
  async cleanup(signal?: AbortSignal): Promise<void> {
    if (this.#created.length === 0) return;
    const layer = this.writable.dir;
    const at = (path: string): string => (path === '' ? layer : join(layer, path));

    // Did the command change these directories? Decide before the removals below change them.
    const before = new Map<string, { changed: boolean; mtimeNs: bigint }>();
    for (const [path, tracked] of this.#dirs) {
      const st = await lstatOrUndefined(at(path));
      if (st?.isDirectory()) before.set(path, { changed: st.mtimeNs !== tracked.setupMtimeNs, mtimeNs: st.mtimeNs });
    }

    for (const stub of [...this.#created].reverse()) {
      const st = await lstatOrUndefined(at(stub.path));
      if (st === undefined) continue;
      try {
        if (stub.kind === 'file' && st.isFile() && st.size === 0n) await unlink(at(stub.path));
        else if (stub.kind === 'dir' && st.isDirectory()) await rmdir(at(stub.path));
      } catch (err) {
        // The command put something in a stub directory: that is its change to keep.
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY') throw err;
      }
    }

    // The root's own metadata is never part of a layer: leave it be.
    const paths = [...before.keys()].filter((path) => path !== '').sort((a, b) => depth(b) - depth(a));
    const candidates = new Set<string>();
    if (this.writable.overlay) {
      for (const path of paths) {
        const tracked = this.#dirs.get(path)!;
        if (!tracked.inWritable && !before.get(path)!.changed) candidates.add(path);
      }
    }
    const opaque = await this.#opaque([...candidates], signal);
    for (const path of paths) {
      const tracked = this.#dirs.get(path)!;
      const { changed, mtimeNs } = before.get(path)!;
      const st = await lstatOrUndefined(at(path));
      if (st === undefined || !st.isDirectory()) continue;
      if (
        candidates.has(path) &&
        !opaque.has(path) &&
        st.mode === tracked.original.mode &&
        st.uid === tracked.original.uid &&
        st.gid === tracked.original.gid &&
        (await readdir(at(path))).length === 0
      ) {
        await rmdir(at(path));
        continue;
      }
      const target = changed ? mtimeNs : tracked.original.mtimeNs;
      if (st.mtimeNs !== target) await setMtime(at(path), target);
    }
  }

  async #opaque(paths: readonly string[], signal: AbortSignal | undefined): Promise<Set<string>> {
    const attr = this.writable.opaqueXattr;
    if (paths.length === 0 || attr === undefined) return new Set();
    const headers = await gnuTarHeaders({ directory: this.writable.dir, paths, xattrs: [attr], signal });
    return new Set(headers.filter((h) => isOpaqueValue(h.xattrs[attr])).map((h) => normalizeArchivePath(h.name)));
  }
}

/**
 * Sets a modification time to the nanosecond. Node's utimes goes through a double (about a
 * quarter of a microsecond off at today's dates); coreutils touch takes the exact value.
 */
async function setMtime(path: string, mtimeNs: bigint): Promise<void> {
  const touch = findExecutable('touch');
  if (touch === undefined) throw new RunSetupError('touch (coreutils) is required to restore directory times');
  const magnitude = mtimeNs < 0n ? -mtimeNs : mtimeNs;
  const decimal = `${mtimeNs < 0n ? '-' : ''}${magnitude / 1_000_000_000n}.${(magnitude % 1_000_000_000n).toString().padStart(9, '0')}`;
  await runToolChecked(touch, ['-c', '-h', '-m', '-d', `@${decimal}`, '--', path]);
}

/** Writes a file with owner and mode as given (used for secrets and generated files). */
export async function writePrivateFile(path: string, content: Uint8Array | string, mode: number, uid = 0, gid = 0): Promise<void> {
  await writeFile(path, content, { flag: 'wx', mode: 0o600 });
  if (uid !== 0 || gid !== 0) await chown(path, uid, gid);
  // After the chown (which clears setuid bits) and free of the umask.
  await chmod(path, mode);
}

