import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname as hostName } from 'node:os';
import { join } from 'node:path';
import { RunUnavailableError } from './errors.js';
import { findExecutable, hostCapabilities, isExecutable, isRoot } from './host.js';
import { DEFAULT_CAPABILITIES } from './namespace.js';
import { runTool } from './process.js';
import { runSandboxed, type PlannedMount, type SandboxContext, type SandboxDriver, type SandboxTools } from './sandbox.js';
import type { RunExecutor, RunOptions, RunResult, RunSpec } from './types.js';

/**
 * The OCI-runtime executor: the command runs in a container started by `runc run` from a
 * generated bundle. runc, not crun: crun 1.8 refuses hybrid cgroup hosts, runc 1.1 runs on them.
 *
 * runc sits inside the same wrapper as the namespace executor (see sandbox.ts), which gives it a
 * private mount namespace holding the overlay root and the private tmpfs: the bundle's
 * config.json and the secrets live in that tmpfs, never on disk, and the overlay disappears with
 * the namespace. runc's state directory is private to the run, so `runc delete --force` on abort
 * and after every run cannot touch anyone else's containers. Rlimits are not set (raising them
 * needs CAP_SYS_RESOURCE, which some hosts withhold); cgroups are runc's defaults.
 */

export interface RuncExecutorOptions {
  /** The runc binary. Default: `runc` on the PATH. */
  readonly runc?: string | undefined;
  /** Where per-run work directories go. Default: the OS temp directory. */
  readonly tmpDir?: string | undefined;
}

/** Docker's masked and read-only /proc and /sys paths. */
const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface RuncTools extends SandboxTools {
  readonly runc: string;
}

/** The host programs the runc executor needs, or the list of what is missing. */
export function runcTools(runc?: string): { tools?: RuncTools; missing: string[] } {
  const missing: string[] = [];
  const found = {
    sh: findExecutable('sh'),
    unshare: findExecutable('unshare'),
    mount: findExecutable('mount'),
    mkdir: findExecutable('mkdir'),
    runc: runc === undefined ? findExecutable('runc') : isExecutable(runc) ? runc : undefined,
    setpriv: findExecutable('setpriv'),
  };
  if (found.runc === undefined) missing.push(`${runc ?? 'runc'} not found`);
  if (found.sh === undefined) missing.push('sh not found');
  if (found.unshare === undefined) missing.push('unshare (util-linux) not found');
  if (found.mount === undefined) missing.push('mount (util-linux) not found');
  if (found.mkdir === undefined) missing.push('mkdir (coreutils) not found');
  if (!isRoot()) missing.push('the runc executor needs root (rootless runc is not supported; use the namespace executor)');
  if (missing.length > 0) return { missing };
  return { tools: found as RuncTools, missing };
}

export class RuncExecutor implements RunExecutor {
  readonly name = 'runc';
  readonly #runc: string | undefined;
  readonly #tmpDir: string | undefined;

  constructor(options: RuncExecutorOptions = {}) {
    this.#runc = options.runc;
    this.#tmpDir = options.tmpDir;
  }

  async run(spec: RunSpec, options: RunOptions = {}): Promise<RunResult> {
    const { tools, missing } = runcTools(this.#runc);
    if (tools === undefined) throw new RunUnavailableError(missing, 'the runc executor');
    return runSandboxed(new RuncDriver(tools), spec, options, { tools, userns: false, tmpDir: this.#tmpDir });
  }
}

interface OciMount {
  readonly destination: string;
  readonly type: string;
  readonly source: string;
  readonly options?: readonly string[];
}

class RuncDriver implements SandboxDriver {
  readonly rootDirs = ['proc', 'dev', 'sys'];
  readonly tmpfsDirs = ['dev'];
  readonly workDirs = ['state'];

  constructor(private readonly tools: RuncTools) {}

  namespaceArgs(): string[] {
    // runc makes the container's namespaces. The wrapper adds a private mount namespace, and a
    // PID namespace (with its own /proc, for runc's bookkeeping) so that killing the wrapper
    // kills the container too: the container's PID namespace is nested in the wrapper's.
    return ['--mount', '--propagation', 'private', '--pid', '--fork', '--mount-proc'];
  }

  phaseA(): string[] {
    return [];
  }

  async prepare(ctx: SandboxContext, mounts: readonly PlannedMount[]): Promise<{ setup: string; argv: string[] }> {
    const bundle = join(ctx.privDir, 'bundle');
    await mkdir(ctx.inSandbox(bundle), { mode: 0o700 });
    await writeFile(ctx.inSandbox(join(bundle, 'config.json')), JSON.stringify(this.#config(ctx, mounts), null, 2), { mode: 0o600 });
    return { setup: '', argv: [this.tools.runc, '--root', join(ctx.workDir, 'state'), 'run', '--bundle', bundle, ctx.id] };
  }

  #config(ctx: SandboxContext, planned: readonly PlannedMount[]): unknown {
    const { spec } = ctx;
    const root = spec.user.uid === 0;
    const privileged = spec.privileged === true;
    const caps = privileged ? hostCapabilities() : [...DEFAULT_CAPABILITIES];
    const sysAccess = privileged ? 'rw' : 'ro';
    const mounts: OciMount[] = [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sysAccess] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', sysAccess] },
    ];
    for (const m of planned) {
      const destination = `/${m.target}`;
      if (m.type === 'tmpfs') {
        const options = ['nosuid', 'nodev', `mode=${m.mode.toString(8).padStart(4, '0')}`];
        if (m.sizeBytes !== undefined) options.push(`size=${m.sizeBytes}`);
        mounts.push({ destination, type: 'tmpfs', source: 'tmpfs', options });
      } else {
        mounts.push({ destination, type: 'bind', source: m.source, options: [m.kind === 'dir' ? 'rbind' : 'bind', m.readonly ? 'ro' : 'rw'] });
      }
    }
    const namespaces = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
    if (spec.network === 'none') namespaces.push({ type: 'network' });
    return {
      ociVersion: '1.0.2',
      process: {
        terminal: false,
        user: { uid: spec.user.uid, gid: spec.user.gid, additionalGids: [...(spec.user.additionalGids ?? [])] },
        args: [...spec.args],
        env: [...spec.env],
        cwd: spec.cwd,
        // As Docker: the bounding set always; effective and permitted for root only.
        capabilities: { bounding: caps, effective: root ? caps : [], permitted: root ? caps : [], inheritable: [], ambient: [] },
        noNewPrivileges: false,
      },
      root: { path: ctx.rootPath, readonly: false },
      hostname: spec.hostname ?? hostName(),
      mounts,
      linux: {
        // Deny every device but the ones runc creates in /dev (it adds those rules itself);
        // privileged, as Docker's --privileged: every device, nothing of /proc hidden.
        resources: { devices: [{ allow: privileged, access: 'rwm' }] },
        namespaces,
        maskedPaths: privileged ? [] : MASKED_PATHS,
        readonlyPaths: privileged ? [] : READONLY_PATHS,
      },
    };
  }

  async teardown(ctx: SandboxContext): Promise<void> {
    const state = join(ctx.workDir, 'state');
    if (!existsSync(join(state, ctx.id))) return;
    await runTool(this.tools.runc, ['--root', state, 'delete', '--force', ctx.id]);
  }
}
