import { accessSync, constants, readFileSync } from 'node:fs';
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

/** Linux capability names by number (capability.h), as OCI runtime configs spell them. */
const CAPABILITY_NAMES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/**
 * The effective capabilities of this process (`CapEff` of /proc/self/status), by name: what a
 * privileged command can be given. A host may withhold some even from root (CAP_SYS_RESOURCE
 * here); asking a runtime for one it lacks would fail the run. Bits without a known name are left
 * out.
 */
export function hostCapabilities(status: string = readFileSync('/proc/self/status', 'utf8')): string[] {
  const hex = /^CapEff:\s*([0-9a-f]+)$/im.exec(status)?.[1];
  if (hex === undefined) return [];
  const bits = BigInt(`0x${hex}`);
  return CAPABILITY_NAMES.filter((_, bit) => (bits >> BigInt(bit)) & 1n);
}
