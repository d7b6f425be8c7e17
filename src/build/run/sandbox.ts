import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname as hostName, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { AbortedError, StevedoreError } from '../../errors.js';
import { RunSetupError } from './errors.js';
import { opaqueXattr } from './layerstack.js';
import { LineSplitter } from './output.js';
import { overlayMountOptions } from './overlayfs.js';
import { TailBuffer } from './process.js';
import { RootPreparer, writePrivateFile, type StubKind } from './rootprep.js';
import { components, DirectoryTree, resolveInRoot } from './tree.js';
import type { RunMount, RunOptions, RunResult, RunSpec } from './types.js';

/**
 * The sandbox both executors share. A wrapper `unshare` gives the run its own mount namespace
 * (and, for the namespace executor, its PID, UTS, IPC, network and user namespaces), in which
 * a small shell script works in two phases:
 *
 * A. mount a private tmpfs (secrets and generated files live there, never on disk), the overlay
 *    root and the scratch overlays of writable bind mounts, then say `ready` and wait;
 * B. (after Node prepared the root) source the script Node wrote into the tmpfs: mount what the
 *    driver asks for, say `exec`, and exec the driver's final program (the command, or runc).
 *
 * Between the two, Node sees the sandbox's mount namespace through `/proc/PID/root` of the
 * wrapper: it resolves mount targets inside the root (symlinks followed within it, never onto
 * the host), creates the missing ones as stubs (removed after the run), writes secrets into the
 * tmpfs, and has the driver write its phase-B script or bundle. Everything mounted lives in
 * that namespace and dies with it: nothing is ever mounted on the host.
 */

/** Host tools the sandbox scripts run, by absolute path. */
export interface SandboxTools {
  readonly sh: string;
  readonly unshare: string;
  readonly mount: string;
  readonly mkdir: string;
  /** util-linux setpriv: when present, the wrapper dies with this process (`--pdeathsig`). */
  readonly setpriv?: string | undefined;
}

/** A mount resolved against the root, ready for a driver to perform. */
export type PlannedMount =
  | {
      readonly type: 'bind';
      /** A path in the sandbox's mount namespace (a host path or one in the private tmpfs). */
      readonly source: string;
      /** Root-relative, resolved. */
      readonly target: string;
      readonly readonly: boolean;
      readonly kind: StubKind;
      /** Set when the target lies inside an earlier tmpfs mount: create it after that mount. */
      readonly createInside?: StubKind | undefined;
    }
  | {
      readonly type: 'tmpfs';
      readonly target: string;
      readonly sizeBytes?: number | undefined;
      readonly mode: number;
      readonly createInside?: StubKind | undefined;
    };

export interface SandboxContext {
  readonly spec: RunSpec;
  readonly tools: SandboxTools;
  /** This run's private host directory. */
  readonly workDir: string;
  /** A tmpfs inside the sandbox (an empty directory on the host). */
  readonly privDir: string;
  /** The root as the sandbox sees it. */
  readonly rootPath: string;
  /** Whether the sandbox has its own user namespace (root mapped to the caller). */
  readonly userns: boolean;
  /** A unique name for this run. */
  readonly id: string;
  /** The path through which Node reaches `path` of the sandbox's mount namespace. */
  inSandbox(path: string): string;
}

export interface SandboxDriver {
  /** unshare's namespace options (after which `--kill-child` and the script follow). */
  namespaceArgs(ctx: SandboxContext): string[];
  /** Directories the driver mounts pseudo filesystems on (`proc`, `dev`, `sys`). */
  readonly rootDirs: readonly string[];
  /** Targets under these are created inside that mount (it is a fresh tmpfs). */
  readonly tmpfsDirs: readonly string[];
  /** Phase-A script lines of the driver, run after the common ones. */
  phaseA(ctx: SandboxContext): string[];
  /** Host directories to create in the work directory before the sandbox starts. */
  readonly workDirs: readonly string[];
  /**
   * Node-side preparation once the root is mounted: returns the phase-B script (mounts) and the
   * program the sandbox finally becomes.
   */
  prepare(ctx: SandboxContext, mounts: readonly PlannedMount[]): Promise<{ readonly setup: string; readonly argv: readonly string[] }>;
  /** Stops what outlives the wrapper (runc's container); called on abort and after each run. */
  teardown?(ctx: SandboxContext): Promise<void>;
}

export interface SandboxConfig {
  readonly tools: SandboxTools;
  readonly userns: boolean;
  /** Where the per-run work directory goes. Default: the OS temp directory. */
  readonly tmpDir?: string | undefined;
}

/** Quotes a string for a POSIX shell. */
export function shq(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

const ENV_NAME = /^[^=\0]+=/;

function validate(spec: RunSpec): void {
  const bad = (why: string): never => {
    throw new RunSetupError(`invalid run specification: ${why}`);
  };
  if (spec.args.length === 0 || spec.args[0] === '') bad('no command');
  for (const arg of spec.args) if (arg.includes('\0')) bad('an argument contains a NUL byte');
  for (const entry of spec.env) if (!ENV_NAME.test(entry) || entry.includes('\0')) bad(`environment entry ${JSON.stringify(entry.split('=')[0])} is not NAME=value`);
  if (!spec.cwd.startsWith('/')) bad(`working directory ${JSON.stringify(spec.cwd)} is not absolute`);
  const ids = [spec.user.uid, spec.user.gid, ...(spec.user.additionalGids ?? [])];
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) bad(`invalid user or group id ${id}`);
  if (spec.hostname !== undefined && !/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(spec.hostname)) bad(`invalid hostname ${JSON.stringify(spec.hostname)}`);
  for (const host of spec.extraHosts ?? []) {
    if (!/^[^\s#]+$/.test(host.name) || !/^[0-9A-Fa-f.:]+$/.test(host.address)) bad(`invalid extra host ${JSON.stringify(`${host.name}:${host.address}`)}`);
  }
  for (const m of spec.mounts ?? []) {
    if (!m.target.startsWith('/') || components(m.target).length === 0) bad(`mount target ${JSON.stringify(m.target)} must be an absolute path below /`);
    if (m.type === 'tmpfs' && m.sizeBytes !== undefined && (!Number.isSafeInteger(m.sizeBytes) || m.sizeBytes <= 0)) bad(`invalid tmpfs size ${m.sizeBytes}`);
    const mode = m.type === 'tmpfs' || m.type === 'secret' ? m.mode : undefined;
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) bad(`invalid mode ${mode}`);
  }
}

/** Removes `.`/`..`/empty components lexically ("/a/./b/../c" → "a/c"). */
function lexical(path: string): string {
  const out: string[] = [];
  for (const part of components(path)) {
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}

function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(`${dir}/`);
}

/** Parses the wrapper's control channel: marker lines, and diagnostics kept for errors. */
class ControlChannel {
  readonly diagnostics = new TailBuffer(8 * 1024);
  #ready = false;
  #exec = false;
  #waiters: (() => void)[] = [];
  readonly #splitter = new LineSplitter((line) => {
    if (line === 'ready') this.#ready = true;
    else if (line === 'exec') this.#exec = true;
    else this.diagnostics.push(Buffer.from(`${line}\n`));
    for (const wake of this.#waiters.splice(0)) wake();
  });

  constructor(stream: Readable) {
    stream.on('data', (chunk: Buffer) => this.#splitter.push(chunk));
    stream.on('end', () => {
      this.#splitter.end();
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  get ready(): boolean {
    return this.#ready;
  }

  get exec(): boolean {
    return this.#exec;
  }

  /** Resolves on the next line (or the end of the channel). */
  next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15 };

/** Runs `spec` in a sandbox set up by `driver`. See the module comment. */
export async function runSandboxed(driver: SandboxDriver, spec: RunSpec, options: RunOptions, config: SandboxConfig): Promise<RunResult> {
  validate(spec);
  if (options.signal?.aborted) throw new AbortedError('run aborted before it started', { cause: options.signal.reason });
  const run = new SandboxRun(driver, spec, config, await mkdtemp(join(config.tmpDir ?? tmpdir(), 'stevedore-run-')));
  let failed = false;
  try {
    return await run.execute(options);
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    // A stub left in the root would end up in the layer: failing to remove one fails the run,
    // unless the run failed already (the first error is the one to report).
    await run.dispose().catch((err: unknown) => {
      if (!failed) throw err;
    });
  }
}

/** One run's sandbox, from spawning the wrapper to removing its traces. */
class SandboxRun {
  readonly ctx: SandboxContext;
  #pid = 0;
  #child: ChildProcess | undefined;
  #preparer: RootPreparer | undefined;
  #aborted = false;

  constructor(
    private readonly driver: SandboxDriver,
    spec: RunSpec,
    private readonly config: SandboxConfig,
    workDir: string,
  ) {
    this.ctx = {
      spec,
      tools: config.tools,
      workDir,
      privDir: join(workDir, 'priv'),
      rootPath: spec.rootfs.kind === 'overlay' ? spec.rootfs.mountpoint : spec.rootfs.path,
      userns: config.userns,
      id: `stevedore-${randomBytes(8).toString('hex')}`,
      inSandbox: (path) => `/proc/${this.#pid}/root${path}`,
    };
  }

  async execute(options: RunOptions): Promise<RunResult> {
    const { ctx, driver } = this;
    const signal = options.signal;
    for (const dir of ['priv', 'bl', ...driver.workDirs]) await mkdir(join(ctx.workDir, dir), { recursive: true });
    const scratch = await scratchBinds(ctx.spec, ctx.workDir);
    const { tools } = this.config;
    const wrapper = [tools.unshare, ...driver.namespaceArgs(ctx), '--kill-child', '--', tools.sh, '-c', phaseA(ctx, driver, scratch)];
    // If Node itself dies, the kernel kills the wrapper, and the wrapper its PID namespace.
    const argv = tools.setpriv === undefined ? wrapper : [tools.setpriv, '--pdeathsig=KILL', '--', ...wrapper];
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' },
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    this.#child = child;
    this.#pid = child.pid ?? 0;
    let exit: Exit | undefined;
    const exited = new Promise<Exit>((resolve, reject) => {
      child.on('error', (err) => reject(new RunSetupError(`cannot start ${argv[0]}`, err.message, { cause: err })));
      child.on('close', (code, sig) => resolve((exit = { code, signal: sig })));
    });
    exited.catch(() => {});
    child.stdin!.on('error', () => {});
    const control = new ControlChannel(child.stdio[3] as Readable);
    streamOutput(child.stdout!, 'stdout', options);
    streamOutput(child.stderr!, 'stderr', options);

    const abortNow = (): void => {
      this.#aborted = true;
      child.kill('SIGKILL');
      void driver.teardown?.(ctx).catch(() => {});
    };
    const checkAborted = (): void => {
      if (this.#aborted) throw new AbortedError('run aborted', { cause: signal?.reason });
    };
    signal?.addEventListener('abort', abortNow, { once: true });
    try {
      // Phase A, until the sandbox says `ready` or dies.
      while (!control.ready && exit === undefined && !this.#aborted) await Promise.race([control.next(), exited]);
      checkAborted();
      if (!control.ready) throw new RunSetupError('the sandbox could not be set up', control.diagnostics.toString().trim() || describeExit(await exited));

      try {
        await this.#prepare(scratch);
      } catch (err) {
        child.kill('SIGKILL');
        await exited.catch(() => {});
        checkAborted();
        if (err instanceof StevedoreError) throw err;
        throw new RunSetupError('cannot prepare the sandbox', (err as Error).message, { cause: err });
      }
      checkAborted();
      child.stdin!.end('go\n');

      const result = await exited;
      checkAborted();
      if (!control.exec) throw new RunSetupError('the sandbox could not be set up', control.diagnostics.toString().trim() || describeExit(result));
      if (result.signal !== null) return { exitCode: 128 + (SIGNAL_NUMBERS[result.signal] ?? 0), signal: result.signal };
      return { exitCode: result.code ?? 255 };
    } finally {
      signal?.removeEventListener('abort', abortNow);
    }
  }

  /** Node's part between the phases: the root, the mounts, and the phase-B script. */
  async #prepare(scratch: readonly ScratchBind[]): Promise<void> {
    const { ctx, driver } = this;
    const rootfs = ctx.spec.rootfs;
    const writable =
      rootfs.kind === 'overlay'
        ? { dir: rootfs.upperDir, overlay: true, opaqueXattr: opaqueXattr(rootfs.userxattr ? 'user' : 'trusted') }
        : { dir: rootfs.path, overlay: false };
    this.#preparer = new RootPreparer(new DirectoryTree(ctx.inSandbox(ctx.rootPath)), writable);
    const mounts = await planMounts(ctx, driver, this.#preparer, scratch);
    const { setup, argv } = await driver.prepare(ctx, mounts);
    // The script execs the final program itself, so the command's argv and environment live only
    // in the private tmpfs until that exec (never on disk, never in the wrapper's command line).
    const tail = ["printf 'exec\\n' >&3", 'exec 2>&4 4>&- 3>&- </dev/null', `exec ${argv.map(shq).join(' ')}`];
    await writeFile(ctx.inSandbox(join(ctx.privDir, 'setup.sh')), `${setup}${tail.join('\n')}\n`, { mode: 0o600 });
    await this.#preparer.sealSetup();
  }

  /** Kills what is left, removes the stubs from the root, deletes the work directory. */
  async dispose(): Promise<void> {
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const closed = new Promise((resolve) => child.once('close', resolve));
      child.kill('SIGKILL');
      await closed;
    }
    try {
      await this.driver.teardown?.(this.ctx).catch(() => {});
      await this.#preparer?.cleanup();
    } finally {
      await rm(this.ctx.workDir, { recursive: true, force: true });
    }
  }
}

function describeExit(exit: Exit): string {
  return exit.signal === null ? `exit status ${exit.code}` : `killed by ${exit.signal}`;
}

function streamOutput(stream: Readable, name: 'stdout' | 'stderr', options: RunOptions): void {
  const onOutput = options.onOutput;
  if (onOutput === undefined) {
    stream.resume();
    return;
  }
  const splitter = new LineSplitter((line) => onOutput(line, name));
  stream.on('data', (chunk: Buffer) => splitter.push(chunk));
  stream.on('end', () => splitter.end());
}

/** A writable bind mount of a directory: an overlay in the private tmpfs discards the writes. */
interface ScratchBind {
  readonly index: number;
  readonly mount: RunMount & { type: 'bind' };
  readonly directory: boolean;
}

async function scratchBinds(spec: RunSpec, workDir: string): Promise<ScratchBind[]> {
  const result: ScratchBind[] = [];
  for (const [index, mount] of (spec.mounts ?? []).entries()) {
    if (mount.type !== 'bind' || mount.readonly !== false) continue;
    let st;
    try {
      st = await lstat(mount.source);
    } catch (err) {
      throw new RunSetupError(`bind mount source ${mount.source} is not accessible`, (err as Error).message, { cause: err });
    }
    if (st.isDirectory()) await symlink(mount.source, join(workDir, 'bl', String(index)));
    result.push({ index, mount, directory: st.isDirectory() });
  }
  return result;
}

function phaseA(ctx: SandboxContext, driver: SandboxDriver, scratch: readonly ScratchBind[]): string {
  const { mount, mkdir: mkdirTool } = ctx.tools;
  const lines = ['set -e', 'exec 4>&2 2>&3', `${shq(mount)} -t tmpfs -o mode=0700,nosuid,nodev tmpfs ${shq(ctx.privDir)}`];
  const dirs = scratch.filter((s) => s.directory);
  if (dirs.length > 0) {
    const sub = (s: ScratchBind, name: string): string => `priv/b/${s.index}/${name}`;
    lines.push(`cd ${shq(ctx.workDir)}`);
    lines.push(`${shq(mkdirTool)} -p ${dirs.flatMap((s) => ['u', 'w', 'm'].map((n) => sub(s, n))).join(' ')}`);
    for (const s of dirs) {
      const options = `lowerdir=bl/${s.index},upperdir=${sub(s, 'u')},workdir=${sub(s, 'w')}${ctx.userns ? ',userxattr' : ''}`;
      lines.push(`${shq(mount)} -t overlay -o ${options} overlay ${sub(s, 'm')}`);
    }
  }
  lines.push(...driver.phaseA(ctx));
  const rootfs = ctx.spec.rootfs;
  if (rootfs.kind === 'overlay') {
    lines.push(`cd ${shq(rootfs.dir)}`);
    lines.push(`${shq(mount)} -t overlay -o ${overlayMountOptions(rootfs)} overlay ${shq(rootfs.mountpoint)}`);
  }
  lines.push(
    'cd /',
    "printf 'ready\\n' >&3",
    'IFS= read -r answer',
    '[ "$answer" = go ]',
    `. ${shq(join(ctx.privDir, 'setup.sh'))}`,
  );
  return lines.join('\n');
}

/** The host files the run sees at /etc/resolv.conf, /etc/hosts and /etc/hostname. */
async function etcFiles(ctx: SandboxContext): Promise<{ target: string; source: string }[]> {
  const { spec } = ctx;
  const exists = async (path: string): Promise<boolean> =>
    lstat(path).then(
      () => true,
      () => false,
    );
  const files: { target: string; source: string }[] = [];
  if (await exists('/etc/resolv.conf')) files.push({ target: '/etc/resolv.conf', source: '/etc/resolv.conf' });

  const extra = spec.extraHosts ?? [];
  if (extra.length > 0) {
    const base = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    const text = `${base.endsWith('\n') || base === '' ? base : `${base}\n`}${extra.map((h) => `${h.address}\t${h.name}\n`).join('')}`;
    const generated = join(ctx.privDir, 'hosts');
    await writePrivateFile(ctx.inSandbox(generated), text, 0o644);
    files.push({ target: '/etc/hosts', source: generated });
  } else if (await exists('/etc/hosts')) {
    files.push({ target: '/etc/hosts', source: '/etc/hosts' });
  }

  const name = spec.hostname ?? hostName();
  const generated = join(ctx.privDir, 'hostname');
  await writePrivateFile(ctx.inSandbox(generated), `${name}\n`, 0o644);
  files.push({ target: '/etc/hostname', source: generated });
  return files;
}

/**
 * Resolves every mount target inside the root, creates the missing ones as stubs, and puts the
 * mount sources in place (secrets and copies into the private tmpfs).
 */
async function planMounts(ctx: SandboxContext, driver: SandboxDriver, preparer: RootPreparer, scratch: readonly ScratchBind[]): Promise<PlannedMount[]> {
  const { spec } = ctx;
  await preparer.ensure(spec.cwd, 'dir', true);
  for (const dir of driver.rootDirs) await preparer.ensure(`/${dir}`, 'dir');

  const planned: PlannedMount[] = [];
  for (const file of await etcFiles(ctx)) {
    planned.push({ type: 'bind', source: file.source, target: await preparer.ensure(file.target, 'file'), readonly: true, kind: 'file' });
  }

  // Parents before children, as Docker orders mounts.
  const mounts = [...(spec.mounts ?? []).entries()].sort(([, a], [, b]) => components(a.target).length - components(b.target).length);
  const tmpfsTargets = [...driver.tmpfsDirs];
  const otherTargets = [...driver.rootDirs.filter((d) => !driver.tmpfsDirs.includes(d)), ...planned.map((p) => p.target)];
  // A target inside an earlier tmpfs (or /dev) is created in that tmpfs once it is mounted.
  const insideTmpfs = (path: string): boolean => tmpfsTargets.some((t) => path !== t && isUnder(path, t));
  for (const [index, mount] of mounts) {
    const { kind, source, readonly } = await mountSource(ctx, index, mount, scratch);
    const lexicalTarget = lexical(mount.target);
    const effective = insideTmpfs(lexicalTarget) ? lexicalTarget : (await resolveInRoot(preparer.view, mount.target)).path;
    let target = effective;
    let createInside: StubKind | undefined;
    if (insideTmpfs(effective)) {
      createInside = kind;
    } else {
      const parent = otherTargets.find((t) => effective !== t && isUnder(effective, t));
      if (parent !== undefined) throw new RunSetupError(`mount target ${mount.target} lies inside /${parent}, which is mounted from elsewhere; nesting is only supported inside tmpfs mounts and /dev`);
      target = await preparer.ensure(mount.target, kind);
    }

    if (mount.type === 'tmpfs') {
      planned.push({ type: 'tmpfs', target, sizeBytes: mount.sizeBytes, mode: mount.mode ?? 0o1777, createInside });
      tmpfsTargets.push(target);
    } else {
      if (source === undefined) throw new RunSetupError(`mount at ${mount.target} has no source`);
      planned.push({ type: 'bind', source, target, readonly, kind, createInside });
      otherTargets.push(target);
    }
  }
  return planned;
}

/** Where a mount's content comes from, made ready: secrets and file copies go to the tmpfs. */
async function mountSource(ctx: SandboxContext, index: number, mount: RunMount, scratch: readonly ScratchBind[]): Promise<{ kind: StubKind; source?: string; readonly: boolean }> {
  const privDir = async (sub: string): Promise<string> => {
    const dir = join(ctx.privDir, sub);
    await mkdir(ctx.inSandbox(dir), { recursive: true, mode: 0o700 });
    return dir;
  };
  switch (mount.type) {
    case 'bind': {
      const st = await lstat(mount.source).catch((err: unknown) => {
        throw new RunSetupError(`bind mount source ${mount.source} is not accessible`, (err as Error).message, { cause: err });
      });
      const kind = st.isDirectory() ? 'dir' : 'file';
      if (mount.readonly !== false) return { kind, source: mount.source, readonly: true };
      // Writable: a directory gets the scratch overlay of phase A, a file a copy in the tmpfs.
      if (scratch.some((s) => s.index === index && s.directory)) return { kind, source: join(ctx.privDir, 'b', String(index), 'm'), readonly: false };
      const copy = join(await privDir(`c/${index}`), 'file');
      await copyFile(mount.source, ctx.inSandbox(copy));
      return { kind, source: copy, readonly: false };
    }
    case 'cache': {
      const st = await lstat(mount.source).catch(() => undefined);
      if (st?.isDirectory() !== true) throw new RunSetupError(`cache mount source ${mount.source} is not a directory`);
      return { kind: 'dir', source: mount.source, readonly: false };
    }
    case 'secret': {
      const file = join(await privDir('s'), String(index));
      await writePrivateFile(ctx.inSandbox(file), mount.content, mount.mode ?? 0o400, mount.uid ?? 0, mount.gid ?? 0);
      return { kind: 'file', source: file, readonly: true };
    }
    case 'ssh': {
      const st = await lstat(mount.socket).catch(() => undefined);
      if (st?.isSocket() !== true) throw new RunSetupError(`ssh agent socket ${mount.socket} does not exist`);
      return { kind: 'file', source: mount.socket, readonly: false };
    }
    case 'tmpfs':
      return { kind: 'dir', readonly: false };
  }
}
