import { createHash, randomBytes } from 'node:crypto';
import { chmod, chown, copyFile, link, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PlanMount, PlanSource, RunStep } from '../dockerfile/index.js';
import { normalizeEntries, OPAQUE_WHITEOUT, type LayerSource } from '../layers/index.js';
import type { ContainerConfig, Platform } from '../oci/index.js';
import { DirectoryTree, resolveInRoot, resolveUser, RunEntitlementError, type FileTree, type RunMount, type RunSpec } from './run/index.js';
import { RunFailedError, RunMountError } from './errors.js';
import type { StepIdentity } from './events.js';
import { buildStepLayer, unpackedLayerId } from './layer.js';
import { pruneUnused } from './unused.js';
import { joinPath } from './paths.js';
import type { LayerRecord } from './events.js';
import { chainId, type LayerDir, type StageLayer, type StageRootfs } from './rootfs.js';
import type { BuildRuntime } from './runtime.js';

/**
 * RUN: the command runs through a `RunExecutor` on a snapshot of the stage's unpacked layers
 * (overlayfs, or a copy where it cannot mount); what it changed becomes the layer. The
 * environment is the config's `Env` with the build args in scope (not persisted) and the proxy
 * variables; the user is `USER` resolved in the image's /etc/passwd; the directory is WORKDIR.
 */

/** The host name RUN commands see (BuildKit's). */
export const RUN_HOSTNAME = 'buildkitsandbox';

/** Lines of output kept for the error of a failing command. */
const OUTPUT_TAIL = 20;

export interface RunStepState {
  readonly config: ContainerConfig;
  readonly rootfs: StageRootfs;
  readonly platform: Platform;
  /** Whether the stage's layers go into the image (else the layer is only kept unpacked). */
  readonly output: boolean;
}

export interface RunOutcome {
  readonly layer: StageLayer;
  readonly record: LayerRecord;
  /** The layer unpacked (overlay's upper directory, taken over), when that was possible. */
  readonly dir?: LayerDir | undefined;
}

export async function executeRun(rt: BuildRuntime, step: RunStep, state: RunStepState, identity: StepIdentity): Promise<RunOutcome> {
  if (step.security === 'insecure' && !rt.allowInsecure) throw new RunEntitlementError('security.insecure');
  const [executor, snapshotter] = await Promise.all([rt.runExecutor(), rt.snapshotter()]);
  await state.rootfs.materialize(rt.cache, rt.signal);
  const lowerDirs = state.rootfs.lowerDirs().map((d) => d.path);
  const snapshot = await snapshotter.prepare(lowerDirs, { signal: rt.signal });
  const releases: (() => Promise<void>)[] = [];
  try {
    const user = await resolveUser(snapshot.tree(), state.config.User ?? '');
    const env = runEnvironment(state.config.Env ?? [], step.env, rt.plan.proxyEnv);
    const mounts: RunMount[] = [];
    const mountEnv: string[] = [];
    const secrets: Uint8Array[] = [];
    let sshIndex = 0;
    for (const mount of step.mounts) {
      const prepared = await prepareMount(rt, mount, state, sshIndex);
      if (mount.type === 'ssh' && prepared.mount !== undefined) sshIndex++;
      if (prepared.mount !== undefined) mounts.push(prepared.mount);
      mountEnv.push(...prepared.env);
      if (prepared.secret !== undefined) secrets.push(prepared.secret);
      if (prepared.release !== undefined) releases.push(prepared.release);
    }
    const censor = censorer(secrets);
    for (const script of step.scripts) {
      const dir = await rt.tempDir('script-');
      const path = join(dir, script.name);
      await writeFile(path, script.content, { mode: 0o755 });
      mounts.push({ type: 'bind', source: path, target: `/dev/pipes/${script.name}`, readonly: true });
    }
    const spec: RunSpec = {
      rootfs: snapshot.rootfs,
      args: step.argv,
      env: [...env, ...mountEnv],
      cwd: state.config.WorkingDir === undefined || state.config.WorkingDir === '' ? '/' : state.config.WorkingDir,
      user,
      // BuildKit's: a RUN that records the host name gets the same one on every machine.
      hostname: RUN_HOSTNAME,
      network: step.network,
      mounts,
      ...(step.security === 'insecure' ? { privileged: true } : {}),
    };
    const tail: string[] = [];
    const result = await executor.run(spec, {
      signal: rt.signal,
      onOutput: (raw, stream) => {
        const line = censor(raw);
        tail.push(line);
        if (tail.length > OUTPUT_TAIL) tail.shift();
        rt.emit({ type: 'log', time: Date.now(), ...identity, stream, line });
      },
    });
    if (result.exitCode !== 0) throw new RunFailedError(result.exitCode, result.signal, tail);

    // A stage the image does not include: on overlayfs the upper directory is the layer, kept
    // as it is (no archive, no compression); its opaque directories are read from the xattrs.
    if (!state.output && snapshot.rootfs.kind === 'overlay') {
      const path = await rt.tempDir('layer-');
      await rm(path, { recursive: true });
      await rename(snapshot.rootfs.upperDir, path);
      const diffId = unpackedLayerId();
      return {
        layer: { diffId, origin: 'built' },
        record: { diffId, uncompressedSize: 0 },
        dir: { path, opaque: { xattr: snapshot.rootfs.userxattr ? 'user' : 'trusted' } },
      };
    }

    // The changes, with their owners, times clamped to the epoch; opaque directories noted so
    // the unpacked layer can stand in an overlay stack.
    const opaque: string[] = [];
    const diff: LayerSource = {
      async *[Symbol.asyncIterator]() {
        for await (const entry of snapshot.diff({ signal: rt.signal })) {
          const slash = entry.path.lastIndexOf('/');
          if ((slash < 0 ? entry.path : entry.path.slice(slash + 1)) === OPAQUE_WHITEOUT) opaque.push(slash < 0 ? '' : entry.path.slice(0, slash));
          yield entry;
        }
      },
    };
    const normalized = normalizeEntries(diff, { owner: 'keep', sourceDateEpoch: rt.epoch, mtime: rt.timestamps === 'keep' ? 'keep' : 'clamp' });
    const built = await buildStepLayer(rt, identity, normalized);
    // On overlayfs the upper directory holds exactly the layer, already in overlay format:
    // keep it as the unpacked layer instead of unpacking the blob again.
    let dir: LayerDir | undefined;
    if (snapshot.rootfs.kind === 'overlay') {
      dir = await rt.cache.adoptLayerDir(built.layer.diffId, snapshot.rootfs.upperDir, opaque).catch(() => undefined);
    }
    return { ...built, dir };
  } finally {
    for (const release of releases.reverse()) await release().catch(() => undefined);
    await snapshot.release();
  }
}

/**
 * The command's environment: the config's variables, then the plan's (build args in scope and
 * ENV values; later wins), then proxy variables given as build args. PATH is always set.
 */
export function runEnvironment(configEnv: readonly string[], stepEnv: readonly string[], proxyEnv: readonly string[]): string[] {
  const merged = new Map<string, string>();
  for (const entry of [...configEnv, ...stepEnv, ...proxyEnv]) {
    const eq = entry.indexOf('=');
    merged.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
  }
  return [...merged].map(([k, v]) => `${k}=${v}`);
}

/** What a log line shows in place of a secret's value. */
export const CENSORED = '****';
/** The shortest line of a multi-line secret that is masked on its own. */
const MIN_CENSORED_LINE = 8;

/**
 * Masks the values of the step's secrets in its output (a command that prints a secret must not
 * put it in a log event or an error). A value is masked as given and without its trailing
 * newline; a secret split across two pieces of an over-long line is not recognised.
 */
export function censorer(secrets: readonly Uint8Array[]): (line: string) => string {
  const values = new Set<string>();
  for (const secret of secrets) {
    const text = Buffer.from(secret).toString('utf8');
    for (const value of [text, text.replace(/\r?\n$/, '')]) if (value !== '' && !value.includes('\n')) values.add(value);
    // A multi-line secret (a key file) is masked line by line, since output arrives a line at a
    // time; lines too short to be secret on their own (a blank, a brace) are left alone.
    for (const part of text.split(/\r?\n/)) if (part.trim().length >= MIN_CENSORED_LINE) values.add(part);
  }
  if (values.size === 0) return (line) => line;
  const ordered = [...values].sort((a, b) => b.length - a.length);
  return (line) => {
    let out = line;
    for (const value of ordered) if (out.includes(value)) out = out.split(value).join(CENSORED);
    return out;
  };
}

interface PreparedMount {
  readonly mount?: RunMount | undefined;
  readonly env: readonly string[];
  /** A secret's value, to be masked in the output. */
  readonly secret?: Uint8Array | undefined;
  readonly release?: (() => Promise<void>) | undefined;
}

/** Per-process locks of `sharing=locked` cache mounts, by cache directory. */
const cacheLocks = new Map<string, Promise<void>>();
/** Cache directories in use, for `sharing=private`. */
const cacheInUse = new Map<string, number>();

async function prepareMount(rt: BuildRuntime, mount: PlanMount, state: RunStepState, sshIndex: number): Promise<PreparedMount> {
  switch (mount.type) {
    case 'tmpfs':
      return { mount: { type: 'tmpfs', target: mount.target, ...(mount.sizeLimit === undefined ? {} : { sizeBytes: mount.sizeLimit }) }, env: [] };
    case 'secret': {
      const secret = rt.secrets[mount.id];
      let content: Uint8Array | undefined;
      if (secret !== undefined) {
        if ('file' in secret) content = await readFile(secret.file);
        else if ('env' in secret) content = process.env[secret.env] === undefined ? undefined : Buffer.from(process.env[secret.env]!);
        else content = typeof secret.value === 'string' ? Buffer.from(secret.value) : secret.value;
      }
      if (content === undefined) {
        if (mount.required) throw new RunMountError(`secret ${JSON.stringify(mount.id)} is required but was not given`);
        return { env: [] };
      }
      const env = mount.env === undefined ? [] : [`${mount.env}=${Buffer.from(content).toString('utf8')}`];
      if (mount.target === undefined) return { env, secret: content };
      return { mount: { type: 'secret', target: mount.target, content, uid: mount.uid, gid: mount.gid, mode: mount.mode }, env, secret: content };
    }
    case 'ssh': {
      const socket = rt.ssh[mount.id];
      if (socket === undefined) {
        if (mount.required) throw new RunMountError(`SSH agent ${JSON.stringify(mount.id)} is required but was not given (--ssh ${mount.id}=SOCKET)`);
        return { env: [] };
      }
      const target = mount.target ?? `/run/buildkit/ssh_agent.${sshIndex}`;
      return { mount: { type: 'ssh', target, socket }, env: sshIndex === 0 ? [`SSH_AUTH_SOCK=${target}`] : [] };
    }
    case 'cache':
      return prepareCacheMount(rt, mount, state);
    case 'bind': {
      const source = await bindSource(rt, mount.from, mount.source, state, !mount.readOnly);
      return { mount: { type: 'bind', source, target: mount.target, readonly: mount.readOnly }, env: [] };
    }
  }
}

/**
 * `--mount=type=cache`: a persistent directory under `<cacheDir>/mounts`, kept between builds.
 * As BuildKit, a cache with `from=STAGE|IMAGE` is seeded, when it is first created, with that
 * source's files at `source`, and it is a different cache for each version of the source (its
 * identity is part of the key); a cache without `from` starts empty, owned by `uid:gid` with
 * `mode`. A seeded cache is made in a temporary directory and renamed into place, so a
 * concurrent build never sees it half copied.
 */
async function prepareCacheMount(rt: BuildRuntime, mount: Extract<PlanMount, { type: 'cache' }>, state: RunStepState): Promise<PreparedMount> {
  const seed = mount.from.kind === 'scratch' ? undefined : await cacheSeed(rt, mount, state);
  const key = createHash('sha256')
    .update(seed === undefined ? mount.id : `${mount.id}:${seed.identity}`)
    .digest('hex');
  const mountsDir = join(rt.cacheDir, 'mounts');
  let dir = join(mountsDir, key);
  // Marked used before it is looked at, so a prune leaves it alone (see unused.ts).
  await mkdir(mountsDir, { recursive: true });
  await writeFile(`${dir}${MOUNT_MARK}`, '');
  if (seed === undefined) {
    const created = await mkdir(dir, { recursive: true }).then((first) => first !== undefined);
    if (created) await setOwnerAndMode(dir, mount);
  } else if (!(await isDirectory(dir))) {
    await mkdir(mountsDir, { recursive: true });
    const temp = join(mountsDir, `.tmp-${randomBytes(8).toString('hex')}`);
    try {
      await seed.copyTo(temp);
      await rename(temp, dir).catch((err: NodeJS.ErrnoException) => {
        // Another build made it first: theirs is as good as ours.
        if (err.code !== 'EEXIST' && err.code !== 'ENOTEMPTY') throw err;
      });
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }
  let release: (() => Promise<void>) | undefined;
  if (mount.sharing === 'locked') {
    const previous = cacheLocks.get(dir) ?? Promise.resolve();
    let unlock!: () => void;
    const held = new Promise<void>((resolve) => {
      unlock = resolve;
    });
    const chained = previous.then(() => held);
    cacheLocks.set(dir, chained);
    await previous;
    release = async () => {
      unlock();
      if (cacheLocks.get(dir) === chained) cacheLocks.delete(dir);
    };
  } else if (mount.sharing === 'private' && (cacheInUse.get(dir) ?? 0) > 0) {
    // In use by another build step: this one gets a fresh, throwaway directory, seeded alike.
    dir = join(await rt.tempDir('cache-'), 'cache');
    if (seed === undefined) {
      await mkdir(dir);
      await setOwnerAndMode(dir, mount);
    } else {
      await seed.copyTo(dir);
    }
  }
  const used = dir;
  cacheInUse.set(used, (cacheInUse.get(used) ?? 0) + 1);
  const previousRelease = release;
  return {
    mount: mount.readOnly ? { type: 'bind', source: used, target: mount.target, readonly: true } : { type: 'cache', source: used, target: mount.target },
    env: [],
    release: async () => {
      const count = (cacheInUse.get(used) ?? 1) - 1;
      if (count <= 0) cacheInUse.delete(used);
      else cacheInUse.set(used, count);
      await previousRelease?.();
    },
  };
}

/** The mark beside a cache mount's directory: its mtime is the mount's last use. */
const MOUNT_MARK = '.used';

/** Removes the RUN cache mounts no build used since `since` (ms since the epoch). */
export function pruneCacheMounts(cacheDir: string, since: number): Promise<number> {
  return pruneUnused(join(cacheDir, 'mounts'), MOUNT_MARK, since);
}

interface CacheSeed {
  /** Which version of the source the seed is (see `MountSourceTree.identity`). */
  readonly identity: string;
  /** Copies the seed to a new directory at `target` (real copies: the cache is written to). */
  copyTo(target: string): Promise<void>;
}

async function cacheSeed(rt: BuildRuntime, mount: Extract<PlanMount, { type: 'cache' }>, state: RunStepState): Promise<CacheSeed> {
  const found = await mountSourceTree(rt, mount.from, state);
  const { path, stat: st } = await resolveInRoot(found.tree, mount.source);
  if (st === undefined) throw new RunMountError(`cache mount source ${mount.source} not found in ${found.what}`);
  if (!st.isDirectory()) throw new RunMountError(`cache mount source ${mount.source} in ${found.what} is not a directory`);
  return { identity: found.identity, copyTo: (target) => copyTree(found.tree, path, target, false) };
}

async function setOwnerAndMode(dir: string, mount: { readonly uid: number; readonly gid: number; readonly mode: number }): Promise<void> {
  await chown(dir, mount.uid, mount.gid);
  await chmod(dir, mount.mode);
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (st) => st.isDirectory(),
    () => false,
  );
}

/** The files a mount takes from (`from=`), what to call them in errors, and their identity. */
interface MountSourceTree {
  readonly tree: FileTree;
  readonly what: string;
  /** Changes whenever the files may have: a stage's cache state, an image's chain ID, a directory's path. */
  readonly identity: string;
}

async function mountSourceTree(rt: BuildRuntime, from: PlanSource, state: RunStepState): Promise<MountSourceTree> {
  switch (from.kind) {
    case 'context':
      return { tree: rt.context, what: 'the build context', identity: 'context' };
    case 'scratch':
      return { tree: new DirectoryTree(await rt.tempDir('scratch-')), what: 'scratch', identity: 'scratch' };
    case 'stage': {
      const stage = await rt.stage(from.index);
      await stage.rootfs.materialize(rt.cache, rt.signal);
      // The stage's build-cache state: the same for the same stage inputs, build after build.
      return { tree: stage.rootfs.fileTree(), what: `stage ${stage.name}`, identity: `stage:${stage.cacheState}` };
    }
    case 'image': {
      const local = rt.localContext(from.ref);
      if (local !== undefined) return { tree: new DirectoryTree(local), what: `context ${from.ref}`, identity: `dir:${local}` };
      const rootfs = await rt.imageRootfs(from.ref, from.reference, state.platform);
      return { tree: rootfs.fileTree(), what: `image ${from.ref}`, identity: rootfs.layers.length === 0 ? 'scratch' : chainId(rootfs.layers.map((l) => l.diffId)) };
    }
  }
}

/**
 * The host path a `--mount=type=bind` shows: a copy of the source (the filtered build context, a
 * stage's or an image's files), hard-linked where the mount is read-only so nothing is copied
 * twice, copied where the command may write (its writes are discarded with the copy).
 */
async function bindSource(rt: BuildRuntime, from: PlanSource, source: string, state: RunStepState, writable: boolean): Promise<string> {
  if (from.kind === 'scratch') return rt.tempDir('bind-');
  const { tree, what } = await mountSourceTree(rt, from, state);
  // Symlinks on the way are followed inside the source's root, as the kernel would there.
  const { path, stat: st } = await resolveInRoot(tree, source);
  if (st === undefined) throw new RunMountError(`bind mount source ${source} not found in ${what}`);
  const dir = await rt.tempDir('bind-');
  const target = join(dir, 'source');
  await copyTree(tree, path, target, !writable);
  return target;
}

/** Copies a subtree of a `FileTree` to a host path (hard links when `linkFiles`, falling back to copies). */
async function copyTree(tree: FileTree, path: string, target: string, linkFiles: boolean): Promise<void> {
  const st = await tree.lstat(path);
  if (st === undefined) return;
  if (st.isDirectory()) {
    await mkdir(target, { mode: Number(st.mode & 0o7777n) });
    for (const name of await tree.readdir(path)) await copyTree(tree, joinPath(path, name), join(target, name), linkFiles);
    await chmod(target, Number(st.mode & 0o7777n));
  } else if (st.isSymbolicLink()) {
    await symlink(await tree.readlink(path), target);
    return;
  } else if (st.isFile()) {
    const host = await tree.hostPath(path);
    if (host === undefined) return;
    if (linkFiles) {
      try {
        await link(host, target);
        return;
      } catch {
        // another filesystem: copy instead
      }
    }
    await copyFile(host, target);
  } else {
    return; // devices and sockets are not needed in a bind source
  }
  await chown(target, Number(st.uid), Number(st.gid)).catch(() => undefined);
}
