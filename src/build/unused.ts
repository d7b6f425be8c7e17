import { randomBytes } from 'node:crypto';
import { lstat, readdir, rename, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Directories of the cache directory that builds share and that go once no build has used them
 * for a while: unpacked layers and chains, RUN cache mounts. Each directory `NAME` has a mark
 * beside it, `NAME<suffix>`, whose mtime is its last use. Another process may be about to use a
 * directory a prune removes, so: a user marks a directory before it looks at it; a prune renames
 * the directory aside, then checks the mark again and puts the directory back if it moved. A user
 * that looks after the rename finds nothing and makes the directory again.
 */

/** A temporary directory older than this belongs to a process that died. */
const LEFTOVER_AGE_MS = 24 * 60 * 60 * 1000;

/** Marks a directory used now (its mark must exist). A cache this process may not write is still read. */
export async function markUsed(mark: string): Promise<void> {
  const now = new Date();
  await utimes(mark, now, now).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPERM' && err.code !== 'EACCES' && err.code !== 'EROFS') throw err;
  });
}

/** Whether `mark` exists and was last used before `since` (ms since the epoch). */
async function unusedSince(mark: string, since: number): Promise<boolean> {
  const st = await lstat(mark).catch(() => undefined);
  return st !== undefined && st.mtimeMs < since;
}

/**
 * Removes the directories of `parent` whose mark (`NAME<suffix>`) was last used before `since`,
 * with their marks, and what a process that died left half-made or half-removed (`.tmp-*`,
 * `.trash-*`, older than a day and than `since`). Returns how many directories were removed. `renamedAside` is
 * called between a directory's rename and the second look at its mark (tests play a concurrent
 * user there).
 */
export async function pruneUnused(parent: string, suffix: string, since: number, renamedAside?: (dir: string) => Promise<void>): Promise<number> {
  const names = await readdir(parent).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw err;
  });
  let removed = 0;
  for (const name of names) {
    const path = join(parent, name);
    if (name.startsWith('.tmp-') || name.startsWith('.trash-')) {
      // Another process may still be making it (a large layer, a seed): dead only after a day.
      const st = await lstat(path).catch(() => undefined);
      if (st !== undefined && st.mtimeMs < Math.min(since, Date.now() - LEFTOVER_AGE_MS)) await rm(path, { recursive: true, force: true });
      continue;
    }
    if (!name.endsWith(suffix) || !(await unusedSince(path, since))) continue;
    const dir = path.slice(0, -suffix.length);
    const trash = join(parent, `.trash-${randomBytes(8).toString('hex')}`);
    try {
      await rename(dir, trash);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await rm(path, { force: true }); // a mark without its directory
      continue;
    }
    await renamedAside?.(dir);
    if (!(await unusedSince(path, since))) {
      // Used while it was being renamed: back it goes (unless it was made again meanwhile).
      await rename(trash, dir).catch(() => rm(trash, { recursive: true, force: true }));
      continue;
    }
    await rm(path, { force: true });
    await rm(trash, { recursive: true, force: true });
    removed++;
  }
  return removed;
}
