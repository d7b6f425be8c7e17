import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, isRoot } from './host.js';
import { runTool } from './process.js';
import type { OverlayRootfs } from './types.js';

/**
 * Overlay mount options. Paths never appear in them: the snapshot directory holds short
 * symlinks to the layers (`l/0`, `l/1`...) and the mount runs from inside it, so the option
 * string stays far below the kernel's one-page limit for hundreds of layers and no path needs
 * overlayfs's comma and colon escaping.
 *
 * Rootful mounts switch off the features that would make the upper directory something other
 * than a plain diff: `redirect_dir` (a renamed directory would only point at its lower copy),
 * `metacopy` (a chmod would copy metadata without data) and `index`. Inside a user namespace
 * `userxattr` is required, and those features are off by construction.
 *
 * `volatile` (where the kernel has it, 5.10 and later) stops overlayfs from syncing every file it
 * copies up: that sync guards an upper directory that is mounted again after a crash, and a RUN's
 * upper directory never is (an unfinished RUN's is deleted, a finished one's becomes a lower
 * layer); the command's own writes were never synced either. It costs a journal commit per file:
 * `chmod -R` over 1,000 files of a lower layer took 1.15 s with it, 0.08 s without (ext4).
 */
export const OVERLAY_MAX_LAYERS = 500;

export function overlayMountOptions(rootfs: Pick<OverlayRootfs, 'lowerDirs' | 'userxattr' | 'volatile'>, links = 'l', upper = 'upper', work = 'work'): string {
  // overlayfs wants the topmost lower directory first; an empty stack mounts an empty directory.
  const lower = rootfs.lowerDirs.length === 0 ? 'empty' : rootfs.lowerDirs.map((_, i) => `${links}/${i}`).reverse().join(':');
  const features = rootfs.userxattr ? 'userxattr' : 'index=off,redirect_dir=off,metacopy=off';
  return `lowerdir=${lower},upperdir=${upper},workdir=${work},${features}${rootfs.volatile ? ',volatile' : ''}`;
}

export interface OverlaySupport {
  readonly available: boolean;
  /** Mount inside a user namespace with `userxattr` (not root). */
  readonly userxattr: boolean;
  /** The kernel takes the `volatile` option. */
  readonly volatile: boolean;
  readonly reason?: string | undefined;
}

const probes = new Map<string, Promise<OverlaySupport>>();

/**
 * Whether overlayfs can be mounted with its directories in `dir` (the snapshot work directory:
 * an upper directory on overlayfs itself, as inside many containers, cannot work), found by
 * mounting one in a private mount namespace, so nothing is left behind. Once per directory.
 */
export function detectOverlay(dir: string = tmpdir()): Promise<OverlaySupport> {
  let probe = probes.get(dir);
  if (probe === undefined) {
    probe = probeOverlay(dir);
    probes.set(dir, probe);
  }
  return probe;
}

async function probeOverlay(parent: string): Promise<OverlaySupport> {
  const userxattr = !isRoot();
  const unavailable = (reason: string): OverlaySupport => ({ available: false, userxattr, volatile: false, reason });
  if (process.platform !== 'linux') return unavailable('overlayfs needs Linux');
  const unshare = findExecutable('unshare');
  const mount = findExecutable('mount');
  if (unshare === undefined || mount === undefined) return unavailable('unshare and mount (util-linux) are needed to mount overlayfs');
  let dir: string;
  try {
    dir = await mkdtemp(join(parent, 'stevedore-overlay-probe-'));
  } catch (err) {
    return unavailable(`cannot create a directory in ${parent}: ${(err as Error).message}`);
  }
  try {
    for (const sub of ['l/0', 'upper', 'work', 'merged']) await mkdir(join(dir, sub), { recursive: true });
    const ns = userxattr ? ['--user', '--map-root-user', '--mount'] : ['--mount'];
    const tryMount = (volatile: boolean) => {
      const options = overlayMountOptions({ lowerDirs: [join(dir, 'l/0')], userxattr, volatile });
      return runTool(unshare, [...ns, '--propagation', 'private', mount, '-t', 'overlay', '-o', options, 'overlay', 'merged'], { cwd: dir });
    };
    // With `volatile` first; a kernel older than 5.10 refuses the option, not overlayfs.
    if ((await tryMount(true)).code === 0) return { available: true, userxattr, volatile: true };
    const result = await tryMount(false);
    if (result.code === 0) return { available: true, userxattr, volatile: false };
    return unavailable(`mounting overlayfs failed: ${result.stderr.trim() || `exit status ${result.code}`}`);
  } catch (err) {
    return unavailable(`mounting overlayfs failed: ${(err as Error).message}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
