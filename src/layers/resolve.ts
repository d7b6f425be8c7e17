import { lstatSync, mkdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { splitPath } from './entry.js';
import { InvalidArchiveError, UnsafeArchiveError } from './errors.js';

/** Linux's own limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

/**
 * Resolves directories of an archive inside an extraction root the way a chroot would, which is
 * what Docker (it extracts inside a chroot) and containerd (`fs.RootPath`) do: a symlink met
 * on the way is followed, but an absolute target restarts at the root and `..` never climbs
 * above it. The result is a path made only of real directories under the root, so the entry
 * created in it lands inside the root whatever symlinks the archive (or a lower layer) planted.
 * Debian's merged /usr (`bin -> usr/bin`) resolves as it would inside the container.
 *
 * The last component of an entry is never followed: callers create it with `O_NOFOLLOW` or
 * replace what is there. Resolutions are cached by archive path; `invalidate()` must be called
 * whenever a directory or symlink is removed or replaced. Defends against hostile archives,
 * not against another process changing the tree during the extraction.
 *
 * Synchronous, as the extractor's other metadata calls (see extract.ts): one look-up per new
 * directory, answered from the cache afterwards.
 */
export class RootResolver {
  readonly #root: string;
  /** Archive directory path → root-relative real path ('' is the root). */
  readonly #cache = new Map<string, string>();

  constructor(root: string) {
    this.#root = root;
  }

  get root(): string {
    return this.#root;
  }

  /** The absolute path of a root-relative real path. */
  absolute(real: string): string {
    return real === '' ? this.#root : join(this.#root, real);
  }

  invalidate(): void {
    this.#cache.clear();
  }

  /**
   * The real (root-relative) directory an archive directory path designates. Missing
   * directories are created (mode 0755) when `create` is set, else `undefined` is returned.
   * `entry` names the archive entry in errors.
   */
  directory(dir: string, create: boolean, entry: string): string | undefined {
    if (dir === '') return '';
    const cached = this.#cache.get(dir);
    if (cached !== undefined) return cached;
    const { parent, base } = splitPath(dir);
    const parentReal = this.directory(parent, create, entry);
    if (parentReal === undefined) return undefined;
    const real = this.#follow(parentReal === '' ? [] : parentReal.split('/'), [base], create, entry);
    if (real !== undefined) this.#cache.set(dir, real);
    return real;
  }

  /** Walks `pending` components from the real directory `resolved`, following symlinks. */
  #follow(resolved: string[], pending: string[], create: boolean, entry: string): string | undefined {
    let hops = 0;
    const queue = [...pending];
    const current = [...resolved];
    while (queue.length > 0) {
      const part = queue.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        current.pop(); // at the root, `..` stays at the root
        continue;
      }
      const abs = join(this.#root, ...current, part);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (st === undefined) {
        if (!create) return undefined;
        try {
          mkdirSync(abs, { mode: 0o755 });
        } catch (mkdirErr) {
          // Made meanwhile by someone else: look again.
          if ((mkdirErr as NodeJS.ErrnoException).code !== 'EEXIST') throw mkdirErr;
          queue.unshift(part);
          continue;
        }
        current.push(part);
        continue;
      }
      if (st.isDirectory()) {
        current.push(part);
      } else if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) throw new UnsafeArchiveError('symlink-loop', entry, `more than ${MAX_SYMLINK_HOPS} symlinks in the path`);
        const target = readlinkSync(abs);
        if (target.startsWith('/')) current.length = 0;
        queue.unshift(...target.split('/'));
      } else {
        throw new InvalidArchiveError(`${JSON.stringify([...current, part].join('/'))} is not a directory`, entry);
      }
    }
    return current.join('/');
  }
}
