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
 */
export const OVERLAY_MAX_LAYERS = 500;

export function overlayMountOptions(rootfs: Pick<OverlayRootfs, 'lowerDirs' | 'userxattr'>, links = 'l', upper = 'upper', work = 'work'): string {
  // overlayfs wants the topmost lower directory first; an empty stack mounts an empty directory.
  const lower = rootfs.lowerDirs.length === 0 ? 'empty' : rootfs.lowerDirs.map((_, i) => `${links}/${i}`).reverse().join(':');
  const features = rootfs.userxattr ? 'userxattr' : 'index=off,redirect_dir=off,metacopy=off';
  return `lowerdir=${lower},upperdir=${upper},workdir=${work},${features}`;
}

export interface OverlaySupport {
  readonly available: boolean;
  /** Mount inside a user namespace with `userxattr` (not root). */
  readonly userxattr: boolean;
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
  if (process.platform !== 'linux') return { available: false, userxattr, reason: 'overlayfs needs Linux' };
  const unshare = findExecutable('unshare');
  const mount = findExecutable('mount');
  if (unshare === undefined || mount === undefined) return { available: false, userxattr, reason: 'unshare and mount (util-linux) are needed to mount overlayfs' };
  let dir: string;
  try {
    dir = await mkdtemp(join(parent, 'stevedore-overlay-probe-'));
  } catch (err) {
    return { available: false, userxattr, reason: `cannot create a directory in ${parent}: ${(err as Error).message}` };
  }
  try {
    for (const sub of ['l/0', 'upper', 'work', 'merged']) await mkdir(join(dir, sub), { recursive: true });
    const options = overlayMountOptions({ lowerDirs: [join(dir, 'l/0')], userxattr });
    const ns = userxattr ? ['--user', '--map-root-user', '--mount'] : ['--mount'];
    const result = await runTool(unshare, [...ns, '--propagation', 'private', mount, '-t', 'overlay', '-o', options, 'overlay', 'merged'], { cwd: dir });
    if (result.code === 0) return { available: true, userxattr };
    return { available: false, userxattr, reason: `mounting overlayfs failed: ${result.stderr.trim() || `exit status ${result.code}`}` };
  } catch (err) {
    return { available: false, userxattr, reason: `mounting overlayfs failed: ${(err as Error).message}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
