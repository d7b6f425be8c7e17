import { CopySnapshotter, type CopySnapshotterOptions } from './copy.js';
import { RunUnavailableError } from './errors.js';
import { findGnuTar } from './gnutar.js';
import { findExecutable, isRoot } from './host.js';
import { NamespaceExecutor, namespaceTools, type NamespaceExecutorOptions } from './namespace.js';
import { OverlaySnapshotter } from './overlay.js';
import { detectOverlay } from './overlayfs.js';
import { runTool } from './process.js';
import { RuncExecutor, runcTools, type RuncExecutorOptions } from './runc.js';
import type { SnapshotMode, Snapshotter } from './snapshot.js';
import type { RunExecutor } from './types.js';

/**
 * What this host can do for RUN, and why not, so the engine can fail a RUN instruction with an
 * error naming the missing piece instead of skipping it. Probes run once per process.
 */

export type ExecutorKind = 'namespace' | 'runc';

export interface Support<Name extends string> {
  readonly name: Name;
  readonly available: boolean;
  /** Each thing missing, in words ("runc not found", "not Linux"...); empty when available. */
  readonly missing: readonly string[];
}

export interface RunSupport {
  /** In order of preference: the first available one is the default. */
  readonly executors: readonly Support<ExecutorKind>[];
  readonly snapshotters: readonly Support<SnapshotMode>[];
}

let namespaceProbe: Promise<string[]> | undefined;

/** Starts the namespaces the namespace executor uses, once, to see that the kernel allows them. */
function probeNamespaces(unshare: string, sh: string, userns: boolean): Promise<string[]> {
  namespaceProbe ??= (async () => {
    const missing: string[] = [];
    const help = await runTool(unshare, ['--help']);
    for (const option of ['--kill-child', '--root', '--wd', '--setuid']) {
      if (!help.stdout.includes(option)) missing.push(`unshare lacks ${option} (util-linux 2.38 or later is needed)`);
    }
    if (missing.length > 0) return missing;
    const ns = ['--mount', '--pid', '--fork', '--uts', '--ipc', ...(userns ? ['--user', '--map-root-user'] : [])];
    const trial = await runTool(unshare, [...ns, sh, '-c', ':']);
    if (trial.code !== 0) {
      const what = userns ? 'user, mount, PID, UTS and IPC namespaces' : 'mount, PID, UTS and IPC namespaces';
      missing.push(`cannot create ${what} (${trial.stderr.trim() || `exit status ${trial.code}`})${userns ? '; unprivileged user namespaces may be disabled' : ''}`);
    }
    return missing;
  })();
  return namespaceProbe;
}

async function namespaceSupport(): Promise<Support<ExecutorKind>> {
  const { tools, missing } = namespaceTools();
  if (tools === undefined) return { name: 'namespace', available: false, missing };
  const problems = await probeNamespaces(tools.unshare, tools.sh, !isRoot());
  return { name: 'namespace', available: problems.length === 0, missing: problems };
}

async function runcSupport(): Promise<Support<ExecutorKind>> {
  const { tools, missing } = runcTools();
  if (tools === undefined) return { name: 'runc', available: false, missing };
  const version = await runTool(tools.runc, ['--version']).catch((err: unknown) => ({ code: -1, stderr: (err as Error).message }));
  if (version.code !== 0) return { name: 'runc', available: false, missing: [`runc --version failed: ${version.stderr.trim()}`] };
  return { name: 'runc', available: true, missing: [] };
}

async function snapshotSupport(workDir: string | undefined): Promise<Support<SnapshotMode>[]> {
  const common: string[] = [];
  if ((await findGnuTar()) === undefined) common.push('GNU tar 1.29 or later not found (it reads the changed files with their xattrs)');
  const overlay = await detectOverlay(workDir);
  const overlayMissing = [...common, ...(overlay.available ? [] : [overlay.reason ?? 'overlayfs cannot be mounted'])];
  const copyMissing = [...common];
  for (const tool of ['cp', 'touch']) if (findExecutable(tool) === undefined) copyMissing.push(`${tool} (coreutils) not found`);
  return [
    { name: 'overlay', available: overlayMissing.length === 0, missing: overlayMissing },
    { name: 'copy', available: copyMissing.length === 0, missing: copyMissing },
  ];
}

export interface DetectOptions {
  /** Where snapshots will live (overlayfs is probed there). Default: the OS temp directory. */
  readonly workDir?: string | undefined;
}

/** Which executors and snapshotters work here. */
export async function detectExecutors(options: DetectOptions = {}): Promise<RunSupport> {
  if (process.platform !== 'linux') {
    const missing = [`RUN needs Linux namespaces; this is ${process.platform}`];
    return {
      executors: [
        { name: 'namespace', available: false, missing },
        { name: 'runc', available: false, missing },
      ],
      snapshotters: [
        { name: 'overlay', available: false, missing },
        { name: 'copy', available: false, missing },
      ],
    };
  }
  const [namespace, runc, snapshotters] = await Promise.all([namespaceSupport(), runcSupport(), snapshotSupport(options.workDir)]);
  return { executors: [namespace, runc], snapshotters };
}

export interface CreateExecutorOptions extends NamespaceExecutorOptions, RuncExecutorOptions {
  /** Default `auto`: the namespace executor, else runc. */
  readonly kind?: ExecutorKind | 'auto' | undefined;
}

function unavailable<N extends string>(supports: readonly Support<N>[], what: string): RunUnavailableError {
  return new RunUnavailableError(
    supports.flatMap((s) => s.missing.map((m) => `${s.name}: ${m}`)),
    what,
  );
}

/** The executor to use, or `RunUnavailableError` listing why none can run. */
export async function createExecutor(options: CreateExecutorOptions = {}): Promise<RunExecutor> {
  const kind = options.kind ?? 'auto';
  const { executors } = await detectExecutors();
  const candidates = executors.filter((e) => kind === 'auto' || e.name === kind);
  const chosen = candidates.find((e) => e.available);
  if (chosen === undefined) throw unavailable(candidates, 'RUN');
  return chosen.name === 'namespace' ? new NamespaceExecutor(options) : new RuncExecutor(options);
}

export interface CreateSnapshotterOptions extends CopySnapshotterOptions {
  /** Default `auto`: overlay where it can be mounted, else copy. */
  readonly mode?: SnapshotMode | 'auto' | undefined;
}

/** The snapshotter to use (its `mode` says which), or `RunUnavailableError`. */
export async function createSnapshotter(options: CreateSnapshotterOptions = {}): Promise<Snapshotter> {
  const mode = options.mode ?? 'auto';
  const { snapshotters } = await detectExecutors({ workDir: options.workDir });
  const candidates = snapshotters.filter((s) => mode === 'auto' || s.name === mode);
  const chosen = candidates.find((s) => s.available);
  if (chosen === undefined) throw unavailable(candidates, 'a RUN snapshot');
  if (chosen.name === 'overlay') {
    const overlay = await detectOverlay(options.workDir);
    return new OverlaySnapshotter({ workDir: options.workDir, userxattr: overlay.userxattr, volatile: overlay.volatile });
  }
  return new CopySnapshotter(options);
}
