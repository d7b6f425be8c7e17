import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Finding the host tools RUN relies on. Node cannot call unshare(2), mount(2) or chroot(2), so
 * the sandbox is built from util-linux and coreutils programs; their absolute paths are resolved
 * once here and then used everywhere, so a command's PATH never decides which host program runs.
 */

/** Directories searched after PATH: a non-root PATH often lacks the sbin directories. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const found = new Map<string, string | undefined>();

/** The absolute path of an executable named `name`, or undefined. Results are cached. */
export function findExecutable(name: string): string | undefined {
  if (found.has(name)) return found.get(name);
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d.startsWith('/')), ...EXTRA_DIRS];
  let result: string | undefined;
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) {
      result = candidate;
      break;
    }
  }
  found.set(name, result);
  return result;
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** True when this process runs as root in the initial user namespace's sense (uid 0). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
