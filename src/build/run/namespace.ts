import { existsSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RunSetupError, RunUnavailableError } from './errors.js';
import { findExecutable, isRoot } from './host.js';
import { runSandboxed, shq, type PlannedMount, type SandboxContext, type SandboxDriver, type SandboxTools } from './sandbox.js';
import { DirectoryTree, readTreeFile } from './tree.js';
import type { RunExecutor, RunOptions, RunResult, RunSpec } from './types.js';
import { parsePasswd } from './user.js';

/**
 * The default executor on Linux: Linux namespaces through util-linux, no daemon, no runtime.
 *
 * `unshare --mount --pid --fork --uts --ipc [--net] [--user --map-root-user]` starts the
 * sandbox (see sandbox.ts). Its final step is
 *   setpriv --bounding-set=<Docker's default capabilities> --regid=GID --groups=... --
 *     env -i -- NAME=value... unshare --root=ROOT --wd=CWD --setuid=UID -- ARGS...
 * setpriv sets the group ids and the capability bounding set while still root, env replaces the
 * whole environment, and unshare chroots, changes directory and drops to the user just before it
 * execs the command, which becomes PID 1 of the sandbox: when it exits, or when the wrapper is
 * killed (`--kill-child`), the kernel kills every process left in the PID namespace.
 *
 * One gap, inherent in using host programs for the last step: the command's environment is set
 * before the host's `unshare` execs it, so variables the host's dynamic loader reads
 * (`LD_PRELOAD`, `LD_LIBRARY_PATH`) also apply to that host program for an instant. runc sets
 * the environment in the exec call itself and has no such gap.
 */

/** Docker's default capability set for containers (and BuildKit's for RUN). */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

/** The device nodes of the sandbox's /dev, bind-mounted from the host's (works in a user namespace too). */
const DEVICES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'] as const;
const DEV_LINKS: readonly (readonly [string, string])[] = [
  ['fd', '/proc/self/fd'],
  ['stdin', '/proc/self/fd/0'],
  ['stdout', '/proc/self/fd/1'],
  ['stderr', '/proc/self/fd/2'],
  ['ptmx', 'pts/ptmx'],
];

export interface NamespaceTools extends SandboxTools {
  readonly setpriv: string;
  readonly env: string;
  /** iproute2's `ip`, to bring up the loopback interface of `--network=none`; optional. */
  readonly ip?: string | undefined;
}

export interface NamespaceExecutorOptions {
  /**
   * Run in a user namespace with root mapped to the caller (the rootless mode). Default: when
   * not running as root. Only uid 0 exists in it, so `USER` must resolve to root.
   */
  readonly userNamespace?: boolean | undefined;
  /** Where per-run work directories go. Default: the OS temp directory. */
  readonly tmpDir?: string | undefined;
}

/** The host programs the namespace executor needs, or the list of what is missing. */
export function namespaceTools(): { tools?: NamespaceTools; missing: string[] } {
  const names = { sh: 'sh', unshare: 'unshare (util-linux)', mount: 'mount (util-linux)', mkdir: 'mkdir (coreutils)', setpriv: 'setpriv (util-linux)', env: 'env (coreutils)' } as const;
  const found: Record<string, string> = {};
  const missing: string[] = [];
  for (const [key, label] of Object.entries(names)) {
    const path = findExecutable(key);
    if (path === undefined) missing.push(`${label} not found`);
    else found[key] = path;
  }
  if (missing.length > 0) return { missing };
  const tools: NamespaceTools = {
    sh: found['sh']!,
    unshare: found['unshare']!,
    mount: found['mount']!,
    mkdir: found['mkdir']!,
    setpriv: found['setpriv']!,
    env: found['env']!,
    ip: findExecutable('ip'),
  };
  return { tools, missing };
}

export class NamespaceExecutor implements RunExecutor {
  readonly name = 'namespace';
  readonly #userns: boolean;
  readonly #tmpDir: string | undefined;

  constructor(options: NamespaceExecutorOptions = {}) {
    this.#userns = options.userNamespace ?? !isRoot();
    this.#tmpDir = options.tmpDir;
  }

  get userNamespace(): boolean {
    return this.#userns;
  }

  async run(spec: RunSpec, options: RunOptions = {}): Promise<RunResult> {
    const { tools, missing } = namespaceTools();
    if (tools === undefined) throw new RunUnavailableError(missing, 'the namespace executor');
    if (this.#userns && (spec.user.uid !== 0 || spec.user.gid !== 0 || (spec.user.additionalGids?.length ?? 0) > 0)) {
      throw new RunSetupError(`user ${spec.user.uid}:${spec.user.gid} cannot run in a user namespace that maps only root (rootless mode); run as root for other users`);
    }
    return runSandboxed(new NamespaceDriver(tools, this.#userns), spec, options, { tools, userns: this.#userns, tmpDir: this.#tmpDir });
  }
}

class NamespaceDriver implements SandboxDriver {
  readonly rootDirs = ['proc', 'sys', 'dev'];
  readonly tmpfsDirs = ['dev'];
  readonly workDirs = ['dev'];

  constructor(
    private readonly tools: NamespaceTools,
    private readonly userns: boolean,
  ) {}

  namespaceArgs(ctx: SandboxContext): string[] {
    const args = ['--mount', '--propagation', 'private', '--pid', '--fork', '--uts', '--ipc'];
    if (ctx.spec.network === 'none') args.push('--net');
    if (this.userns) args.push('--user', '--map-root-user');
    return args;
  }

  phaseA(ctx: SandboxContext): string[] {
    // The sandbox's /dev is a tmpfs of its own, filled by Node, then bound onto the root.
    return [`${shq(this.tools.mount)} -t tmpfs -o nosuid,mode=0755,size=65536k tmpfs ${shq(join(ctx.workDir, 'dev'))}`];
  }

  async prepare(ctx: SandboxContext, mounts: readonly PlannedMount[]): Promise<{ setup: string; argv: string[] }> {
    const dev = ctx.inSandbox(join(ctx.workDir, 'dev'));
    const devices = DEVICES.filter((name) => existsSync(`/dev/${name}`));
    for (const name of devices) await writeFile(join(dev, name), '', { mode: 0o666 });
    await mkdir(join(dev, 'pts'), { mode: 0o755 });
    await mkdir(join(dev, 'shm'), { mode: 0o1777 });
    for (const [name, target] of DEV_LINKS) await symlink(target, join(dev, name));

    // The mounts go to `mount --fstab FILE -a` in batches: one process for a dozen mounts.
    // A batch ends where a mount point must be created inside a tmpfs mounted by the batch.
    const root = (target: string): string => join(ctx.rootPath, target);
    const steps: string[] = [];
    let batch: string[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const file = join(ctx.privDir, `fstab.${steps.length}`);
      await writeFile(ctx.inSandbox(file), `${batch.join('\n')}\n`, { mode: 0o600 });
      steps.push(`${shq(this.tools.mount)} --fstab ${shq(file)} -a`);
      batch = [];
    };
    const add = (source: string, target: string, type: string, options: string): void => {
      batch.push(`${fstabField(source)} ${fstabField(root(target))} ${type} ${options} 0 0`);
    };

    add('proc', 'proc', 'proc', 'nosuid,nodev,noexec');
    // sysfs can only be mounted by the owner of the network namespace: otherwise show the host's.
    const sysAccess = ctx.spec.privileged === true ? 'rw' : 'ro';
    if (this.userns && ctx.spec.network !== 'none') add('/sys', 'sys', 'none', `rbind,${sysAccess},nosuid,nodev,noexec`);
    else add('sysfs', 'sys', 'sysfs', `${sysAccess},nosuid,nodev,noexec`);
    add(join(ctx.workDir, 'dev'), 'dev', 'none', 'bind');
    for (const name of devices) add(`/dev/${name}`, `dev/${name}`, 'none', 'bind');
    add('devpts', 'dev/pts', 'devpts', `newinstance,ptmxmode=0666,mode=0620${this.userns ? '' : ',gid=5'},nosuid,noexec`);
    add('shm', 'dev/shm', 'tmpfs', 'nosuid,nodev,noexec,mode=1777,size=67108864');

    for (const mount of mounts) {
      if (mount.createInside !== undefined) {
        await flush();
        const dir = mount.createInside === 'dir' ? mount.target : parent(mount.target);
        steps.push(`${shq(this.tools.mkdir)} -p ${shq(root(dir))}`);
        if (mount.createInside === 'file') steps.push(`: > ${shq(root(mount.target))}`);
      }
      if (mount.type === 'tmpfs') {
        const size = mount.sizeBytes === undefined ? '' : `,size=${mount.sizeBytes}`;
        add('tmpfs', mount.target, 'tmpfs', `nosuid,nodev,mode=${mount.mode.toString(8).padStart(4, '0')}${size}`);
      } else {
        add(mount.source, mount.target, 'none', `${mount.kind === 'dir' ? 'rbind' : 'bind'}${mount.readonly ? ',ro' : ''}`);
      }
    }
    await flush();
    if (ctx.spec.hostname !== undefined) steps.push(`printf '%s' ${shq(ctx.spec.hostname)} > /proc/sys/kernel/hostname`);
    if (ctx.spec.network === 'none' && this.tools.ip !== undefined) steps.push(`${shq(this.tools.ip)} link set lo up`);
    return { setup: `${steps.join('\n')}\n`, argv: await this.#argv(ctx) };
  }

  async #argv(ctx: SandboxContext): Promise<string[]> {
    const { spec } = ctx;
    // As runc: HOME, when the environment lacks it, is the user's home in the image's passwd.
    const env = [...spec.env];
    if (!env.some((e) => e.startsWith('HOME=') && e.length > 5)) {
      const passwd = await readTreeFile(new DirectoryTree(ctx.inSandbox(ctx.rootPath)), 'etc/passwd', 4 * 1024 * 1024).catch(() => undefined);
      const home = parsePasswd(passwd?.toString('utf8') ?? '').find((u) => u.uid === spec.user.uid)?.home;
      env.push(`HOME=${home || '/'}`);
    }
    // Privileged: the bounding set is left as the wrapper's, every capability this process holds.
    const bounding = spec.privileged === true ? [] : [`--bounding-set=-all,${DEFAULT_CAPABILITIES.map((c) => `+${c.slice(4).toLowerCase()}`).join(',')}`];
    const gids = spec.user.additionalGids ?? [];
    // In a user namespace that maps only root, setgroups(2) is denied and the ids are already
    // 0:0 (`run` refuses other users there).
    const identity = this.userns ? [] : [`--regid=${spec.user.gid}`, gids.length > 0 ? `--groups=${gids.join(',')}` : '--clear-groups'];
    return [
      this.tools.setpriv,
      ...bounding,
      ...identity,
      '--',
      this.tools.env,
      '-i',
      '--',
      ...env,
      this.tools.unshare,
      `--root=${ctx.rootPath}`,
      `--wd=${spec.cwd}`,
      `--setuid=${spec.user.uid}`,
      '--',
      ...spec.args,
    ];
  }
}

function parent(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** A path as an fstab field: whitespace and backslashes octal-escaped. */
function fstabField(path: string): string {
  return path.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}
