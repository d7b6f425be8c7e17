import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../test/harness/index.js';

/** A filesystem made for one timed build, and how to take it away again. */
export interface FreshFilesystem {
  /** Where it is mounted (empty but for ext4's lost+found). */
  readonly path: string;
  release(): Promise<void>;
}

/**
 * A new ext4 filesystem (default features, journal included) on a sparse image under `scratch`,
 * mounted through a loop device; undefined, with the reason printed once, where this machine
 * cannot make one (not root, no loop devices).
 *
 * Why the benchmarks that write tens of thousands of files want one per build: on ext4 *without*
 * a journal (this VM's disk), the inode allocator passes over every inode freed in the last 60 s
 * (360 s while its inode-table block is unwritten), one buffer lookup each, scanning its block
 * group from the start for every new file (`recently_deleted()` in fs/ext4/ialloc.c). buildah's
 * vfs storage deletes a container's whole root after every RUN, ~200,000 files in the 50,000-file
 * workload, so whichever build ran next paid 2-5x for writing the same files (perf: 60-85% of the
 * command's time in `find_inode_bit`). On a fresh filesystem each tool pays only for its own
 * deletes.
 */
export async function freshFilesystem(scratch: string, name: string, sizeGiB = 16): Promise<FreshFilesystem | undefined> {
  const image = join(scratch, `${name}.ext4`);
  const path = join(scratch, name);
  try {
    await run('truncate', ['-s', `${sizeGiB}G`, image]);
    // One inode per 8 KiB: vfs storage holds several full copies of a 50,000-file tree.
    await run('mkfs.ext4', ['-q', '-F', '-i', '8192', image]);
    await mkdir(path, { recursive: true });
    await run('mount', ['-o', 'loop', image, path]);
  } catch (err) {
    warnOnce(`no fresh filesystem per build (${(err as Error).message.split('\n')[0]}); builds share ${scratch}`);
    await rm(image, { force: true });
    return undefined;
  }
  return {
    path,
    async release() {
      await run('umount', [path], { timeoutMs: 600_000 });
      await rm(image, { force: true });
      await rm(path, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `use` with a directory on a fresh filesystem (a directory `name` of `scratch` where none
 * can be made), after a `sync` so that earlier writes are not flushed during the timed part, and
 * takes the filesystem away afterwards.
 */
export async function onFreshFilesystem<T>(scratch: string, name: string, use: (dir: string) => Promise<T>): Promise<T> {
  const fs = await freshFilesystem(scratch, name);
  try {
    const dir = fs?.path ?? join(scratch, name);
    await mkdir(dir, { recursive: true });
    await run('sync', []);
    return await use(dir);
  } finally {
    await fs?.release();
  }
}

let warned = false;
function warnOnce(message: string): void {
  if (warned) return;
  warned = true;
  console.log(`  note: ${message}`);
}
