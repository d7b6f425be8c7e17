import { chmod, utimes, writeFile } from 'node:fs/promises';
import pLimit from 'p-limit';
import type { BigIntStats } from 'node:fs';
import { join, relative } from 'node:path';
import { DockerignoreMatcher, isGitSource, isHttpSource, type AddStep, type CopyStep, type PlanSource } from '../dockerfile/index.js';
import { detectArchive, extractArchive } from './archive.js';
import { ContextEscapeError, CopyDestinationError, CopySourceNotFoundError } from './errors.js';
import { CopyPlan, type CopyOptions } from './copy.js';
import { numericOwner, ownerNeedsNames, parseModeSpec, parseOwnerSpec, resolveOwner, type Owner } from './modes.js';
import { cleanPath, containsWildcards, goMatch, joinPath, rootRelative, splitWildcards } from './paths.js';
import { checkoutGit, downloadFile, parseGitSource } from './remote.js';
import type { BuildRuntime } from './runtime.js';
import { directorySourceTree, fileSourceTree, resolveSourcePath, sortedChildren, type ResolvedSource, type SourceTree } from './source-tree.js';
import type { StageRootfs } from './rootfs.js';
import { EMPTY_VIEW } from './view.js';
import { formatPlatform, type Platform } from '../oci/index.js';
import type { CacheInput } from './cache/key.js';

/**
 * COPY and ADD: the sources are resolved first (wildcards expanded, URLs downloaded, archives
 * recognised), then planned into one layer by `CopyPlan` against the stage's root. The plan may
 * throw `RootfsNeeded` on a lazy root; the stage then unpacks its base and calls again.
 */

/** One thing to copy, resolved. */
type CopyJob =
  | { readonly kind: 'copy'; readonly tree: SourceTree; readonly source: ResolvedSource; readonly name: string; readonly copyDirContents: boolean; readonly include?: string | undefined; readonly local: boolean }
  /** A local archive ADD unpacks, already extracted into a directory of the build. */
  | { readonly kind: 'unpack'; readonly tree: SourceTree; readonly root: ResolvedSource };

export interface CopyStepState {
  readonly rootfs: StageRootfs;
  readonly platform: Platform;
}

/** Sources resolved once per step (downloads and checkouts are not repeated when planning restarts). */
export interface PreparedCopy {
  readonly jobs: readonly CopyJob[];
  readonly owner: Owner | undefined;
  readonly needsNames: boolean;
}

/** Resolves every source of the step into copy jobs. */
export async function prepareCopy(rt: BuildRuntime, step: CopyStep | AddStep, state: CopyStepState): Promise<PreparedCopy> {
  const jobs: CopyJob[] = [];
  const sourceTree = await sourceTreeOf(rt, step, state);
  for (const source of step.sources) {
    if (step.kind === 'add' && isGitSource(source)) {
      const git = parseGitSource(source);
      const dir = await rt.tempDir('git-');
      await checkoutGit(git, dir, step.keepGitDir, rt.signal, step.checksum);
      const tree = directorySourceTree(dir, `git repository ${git.remote}`, { resetOwner: true });
      const root = git.subdir === undefined ? '' : rootRelative(git.subdir);
      const resolved = await resolveSourcePath(tree, root, true, source);
      jobs.push({ kind: 'copy', tree, source: resolved, name: '/', copyDirContents: false, local: false });
      continue;
    }
    if (step.kind === 'add' && isHttpSource(source)) {
      const file = await downloadFile(source, await rt.tempDir('http-'), step.checksum, rt.signal);
      const tree = directorySourceTree(join(file.path, '..'), source, { resetOwner: true });
      const resolved = await resolveSourcePath(tree, file.name, false, source);
      jobs.push({ kind: 'copy', tree, source: resolved, name: file.name, copyDirContents: false, local: false });
      continue;
    }
    await resolveLocal(sourceTree, source, step, jobs);
  }
  for (const content of step.contents) {
    const dir = await rt.tempDir('heredoc-');
    const path = join(dir, content.name);
    // BuildKit's `Mkfile(name, 0644, data)`: the mode, whatever the umask.
    await writeFile(path, content.content);
    await chmod(path, 0o644);
    await utimes(path, rt.epoch, rt.epoch);
    const tree = directorySourceTree(dir, `heredoc ${content.name}`, { resetOwner: true });
    jobs.push({ kind: 'copy', tree, source: await resolveSourcePath(tree, content.name, false, `<<${content.name}`), name: content.name, copyDirContents: true, local: false });
  }

  // The Dockerfile reference's rule (the classic builder's check; BuildKit lets the last source win).
  const count = jobs.length;
  if (count > 1 && !step.destPath.endsWith('/')) throw new CopyDestinationError(step.kind === 'add' ? 'ADD' : 'COPY', step.dest);

  // ADD unpacks local archives instead of copying them, and a downloaded one with `--unpack=true`
  // (BuildKit's default for URLs is to copy the file as it is).
  if (step.kind === 'add' && step.unpack !== false) {
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[i]!;
      if (job.kind !== 'copy' || !job.source.stat.isFile() || (!job.local && step.unpack !== true)) continue;
      const host = await job.tree.hostPath(job.source.path);
      if (host === undefined) continue;
      const compression = await detectArchive(host, rt.signal);
      if (compression === undefined) continue;
      const dir = await rt.tempDir('unpack-');
      await extractArchive(host, compression, dir, rt.signal);
      const tree = directorySourceTree(dir, `archive ${job.name.replace(/^\//, '')}`);
      jobs[i] = { kind: 'unpack', tree, root: await resolveSourcePath(tree, '', true, host) };
    }
  }

  let owner: Owner | undefined;
  let needsNames = false;
  if (step.chown !== undefined) {
    const spec = parseOwnerSpec(step.chown);
    needsNames = ownerNeedsNames(spec);
    if (!needsNames) owner = numericOwner(spec);
  }
  return { jobs, owner, needsNames };
}

/** The tree local sources are read from: the context, a stage, an image, a named directory. */
async function sourceTreeOf(rt: BuildRuntime, step: CopyStep | AddStep, state: CopyStepState): Promise<SourceTree> {
  if (step.kind === 'add') return rt.context;
  const from = step.from;
  switch (from.kind) {
    case 'context':
      return rt.context;
    case 'scratch':
      return directorySourceTree(await rt.tempDir('scratch-'), 'scratch');
    case 'stage': {
      const stage = await rt.stage(from.index);
      await stage.rootfs.materialize(rt.cache, rt.signal);
      return fileSourceTree(stage.rootfs.fileTree(), `stage ${stage.name}`);
    }
    case 'image': {
      const local = rt.localContext(from.ref);
      if (local !== undefined) return directorySourceTree(local, `context ${from.ref}`, { resetOwner: true, escape: 'error' });
      const rootfs = await rt.imageRootfs(from.ref, from.reference, state.platform);
      return fileSourceTree(rootfs.fileTree(), `image ${from.ref}`);
    }
  }
}

/** A local source (`file`, `dir/`, `*.go`, `--parents a/./b`), expanded into jobs. */
async function resolveLocal(tree: SourceTree, source: string, step: CopyStep | AddStep, jobs: CopyJob[]): Promise<void> {
  const relative = cleanPath(source);
  if (tree.escape === 'error' && (relative === '..' || relative.startsWith('../'))) {
    throw new ContextEscapeError(source, 'the path climbs above the root of the context');
  }
  let path = cleanPath(`/${source}`);
  let include: string | undefined;
  if (step.kind === 'copy' && step.parents) {
    // `--parents`: copy from the pivot (`/./`, else the root), keeping the path below it.
    const pivot = source.indexOf('/./');
    const pattern = pivot < 0 ? source : source.slice(pivot + 3);
    path = pivot < 0 ? '/' : cleanPath(`/${source.slice(0, pivot)}`);
    include = rootRelative(pattern);
    const base = await resolveSourcePath(tree, rootRelative(path), true, source);
    jobs.push({ kind: 'copy', tree, source: base, name: path, copyDirContents: true, include, local: true });
    return;
  }
  if (!containsWildcards(path)) {
    const resolved = await resolveSourcePath(tree, rootRelative(path), true, source);
    jobs.push({ kind: 'copy', tree, source: resolved, name: path, copyDirContents: true, local: true });
    return;
  }
  const { base, pattern } = splitWildcards(path);
  const baseResolved = await resolveSourcePath(tree, rootRelative(base), true, source);
  if (!baseResolved.stat.isDirectory()) throw new CopySourceNotFoundError(source, tree.description);
  const matches: string[] = [];
  await walkMatches(tree, baseResolved.path, '', pattern, matches);
  // An empty match is not an error (BuildKit's AllowEmptyWildcard): nothing is copied.
  for (const match of matches) {
    const resolved = await resolveSourcePath(tree, match, true, source);
    jobs.push({ kind: 'copy', tree, source: resolved, name: `/${match}`, copyDirContents: true, local: true });
  }
}

/** fsutil's `resolveWildcards`: a lexical walk below `base`; a matching directory is not entered. */
async function walkMatches(tree: SourceTree, base: string, rel: string, pattern: string, out: string[]): Promise<void> {
  for (const name of await sortedChildren(tree, joinPath(base, rel))) {
    const childRel = joinPath(rel, name);
    const path = joinPath(base, childRel);
    const st = await tree.lstat(path);
    if (st === undefined) continue;
    if (goMatch(pattern, childRel)) {
      out.push(path);
      continue;
    }
    // Only a directory whose depth is below the pattern's can hold a match.
    if (st.isDirectory() && childRel.split('/').length < pattern.split('/').length) await walkMatches(tree, base, childRel, pattern, out);
  }
}

/** Plans the step's layer. Throws `RootfsNeeded` when a lazy root is not enough. */
export async function planCopy(rt: BuildRuntime, step: CopyStep | AddStep, state: CopyStepState, prepared: PreparedCopy): Promise<CopyPlan> {
  let owner = prepared.owner;
  if (prepared.needsNames) {
    // Names are looked up in the destination stage's /etc/passwd and /etc/group.
    await state.rootfs.materialize(rt.cache, rt.signal);
    owner = await resolveOwner(step.chown!, state.rootfs.fileTree());
  }
  const plan = new CopyPlan({
    // `--link` copies onto an empty root: the layer does not depend on what is below it.
    view: step.link ? EMPTY_VIEW : state.rootfs.view(),
    lazy: !step.link && !state.rootfs.known,
    epoch: rt.epoch,
    timestamps: rt.timestamps,
  });
  const mode = step.chmod === undefined ? undefined : parseModeSpec(step.chmod);
  const exclude = step.exclude.length === 0 ? undefined : new DockerignoreMatcher(step.exclude);
  for (const job of prepared.jobs) {
    if (job.kind === 'unpack') {
      // BuildKit's `unpack`: the destination is a directory (made like COPY's parents), the
      // archive's own owners, modes and times are kept.
      await plan.mkdirAll(step.destPath, owner);
      await plan.copy(job.tree, job.root, '', step.destPath.endsWith('/') ? step.destPath : `${step.destPath}/`, { copyDirContents: true, replace: true });
      continue;
    }
    const options: CopyOptions = {
      owner,
      mode,
      copyDirContents: job.copyDirContents,
      exclude: job.local ? exclude : undefined,
      include: job.include,
    };
    await plan.copy(job.tree, job.source, job.name, step.destPath, options);
  }
  return plan;
}

/** Hashes a regular file of a local source tree under `root` (the stat index's job). */
export type FileHasher = (root: string, hostPath: string, st: BigIntStats) => Promise<string>;

/**
 * The cache inputs of a COPY or ADD beyond its instruction: for sources in a local directory
 * (the build context, a named local context), every entry that lands in the layer, found by the
 * same planner that writes the layer (so `.dockerignore`, wildcards, `--exclude` and `--parents`
 * select exactly the same files) run against an empty root, with its path, type, mode, owner,
 * time as it will be written (clamped to SOURCE_DATE_EPOCH unless times are kept), link target
 * and content digest; a stage by its final cache state; an image by its digest; a URL or a git
 * repository by its `--checksum`. A string instead says why the step cannot be cached.
 */
export async function copyCacheInputs(rt: BuildRuntime, step: CopyStep | AddStep, state: CopyStepState, hash: FileHasher): Promise<CacheInput[] | string> {
  const what = `${step.kind.toUpperCase()} ${[...step.sources, ...step.contents.map((c) => `<<${c.name}`)].join(' ')}`;
  const inputs: CacheInput[] = [];
  let tree: SourceTree | undefined;
  let root: string | undefined;
  if (step.kind === 'copy' && step.from.kind !== 'context') {
    const from = step.from;
    if (from.kind === 'stage') {
      const stage = await rt.stage(from.index);
      inputs.push({ name: `stage ${stage.name}`, value: stage.cacheState, label: `${what}: stage ${stage.name}` });
    } else if (from.kind === 'image') {
      const local = rt.localContext(from.ref);
      if (local === undefined) {
        const image = await rt.images.resolve(from.ref, from.reference, state.platform);
        inputs.push({ name: `image ${from.ref}`, value: `${image.descriptor.digest} ${formatPlatform(state.platform)}`, label: `${what}: image ${from.ref} digest` });
      } else {
        tree = directorySourceTree(local, `context ${from.ref}`, { resetOwner: true, escape: 'error' });
        root = local;
      }
    }
  } else {
    tree = rt.context;
    root = rt.context.root;
  }
  const local: string[] = [];
  for (const source of step.sources) {
    if (step.kind === 'add' && isGitSource(source)) {
      // A commit named by --checksum is what is checked out, or the step fails.
      if (step.checksum === undefined) return `${what}: a git repository without --checksum=COMMIT is not cached (its content is only known once fetched)`;
      inputs.push({ name: `git ${source}`, value: step.checksum, label: `${what}: --checksum` });
      continue;
    }
    if (step.kind === 'add' && isHttpSource(source)) {
      if (step.checksum === undefined) return `${what}: a URL without --checksum is not cached (its content is only known once downloaded)`;
      inputs.push({ name: `url ${source}`, value: step.checksum, label: `${what}: --checksum` });
      continue;
    }
    local.push(source);
  }
  if (tree === undefined || root === undefined || local.length === 0) return inputs;

  const jobs: CopyJob[] = [];
  for (const source of local) await resolveLocal(tree, source, step, jobs);
  const owner = step.chown === undefined ? undefined : ownerNeedsNames(parseOwnerSpec(step.chown)) ? undefined : numericOwner(parseOwnerSpec(step.chown));
  const options = {
    owner,
    mode: step.chmod === undefined ? undefined : parseModeSpec(step.chmod),
    exclude: step.exclude.length === 0 ? undefined : new DockerignoreMatcher(step.exclude),
  };
  const plan = new CopyPlan({ view: EMPTY_VIEW, lazy: false, epoch: rt.epoch, timestamps: rt.timestamps });
  for (const job of jobs) {
    if (job.kind !== 'copy') continue;
    await plan.copy(job.tree, job.source, job.name, step.destPath, { ...options, copyDirContents: job.copyDirContents, include: job.include });
  }
  inputs.push(...(await plannedInputs(plan, root, what, '', hash)));
  return inputs;
}

/**
 * The cache inputs of a RUN bind mount's source: its files when they come from a local
 * directory, else the source stage's state or the image's digest.
 */
export async function bindCacheInputs(rt: BuildRuntime, mount: { readonly target: string; readonly source: string; readonly from: PlanSource }, platform: Platform, hash: FileHasher): Promise<CacheInput[]> {
  const what = `bind mount ${mount.target}`;
  let tree: SourceTree;
  let root: string;
  switch (mount.from.kind) {
    case 'scratch':
      return [];
    case 'stage': {
      const stage = await rt.stage(mount.from.index);
      return [{ name: `${what}: stage`, value: stage.cacheState, label: `${what}: stage ${stage.name}` }];
    }
    case 'image': {
      const local = rt.localContext(mount.from.ref);
      if (local === undefined) {
        const image = await rt.images.resolve(mount.from.ref, mount.from.reference, platform);
        return [{ name: `${what}: image`, value: `${image.descriptor.digest} ${formatPlatform(platform)}`, label: `${what}: image ${mount.from.ref} digest` }];
      }
      tree = directorySourceTree(local, `context ${mount.from.ref}`, { resetOwner: true, escape: 'error' });
      root = local;
      break;
    }
    case 'context':
      tree = rt.context;
      root = rt.context.root;
      break;
  }
  let resolved: ResolvedSource;
  try {
    resolved = await resolveSourcePath(tree, rootRelative(mount.source), true, mount.source);
  } catch {
    // The RUN reports the missing source; its key just says so.
    return [{ name: `${what}: source`, value: 'missing' }];
  }
  const plan = new CopyPlan({ view: EMPTY_VIEW, lazy: false, epoch: rt.epoch, timestamps: 'keep' });
  await plan.copy(tree, resolved, `/${resolved.path}`, '/mount/', { copyDirContents: true });
  return plannedInputs(plan, root, what, `${what}: `, hash);
}

/** One input per planned entry: its metadata and, for a file, the digest of its content. */
/** Files hashed at once: reads overlap with hashing (a cold context is read, not stat'ed, here). */
const HASH_CONCURRENCY = 8;

async function plannedInputs(plan: CopyPlan, root: string, what: string, prefix: string, hash: FileHasher): Promise<CacheInput[]> {
  const entries = plan.plannedEntries();
  const limit = pLimit(HASH_CONCURRENCY);
  const contents = await Promise.all(entries.map(({ content }) => (content === undefined ? '' : limit(() => hash(root, content.path, content.stat)))));

  const inputs: CacheInput[] = [];
  // Files with several links in one source are written once and linked after: which is which is part of the layer.
  const firstOfInode = new Map<string, string>();
  for (const [i, entry] of entries.entries()) {
    let linkedTo = '';
    if (entry.inode !== undefined) {
      linkedTo = firstOfInode.get(entry.inode) ?? '';
      if (linkedTo === '') firstOfInode.set(entry.inode, entry.path);
    }
    const label = entry.content === undefined ? entry.path : relative(root, entry.content.path);
    const value = JSON.stringify([entry.type, entry.mode, entry.uid, entry.gid, entry.mtime, entry.size, entry.linkname ?? '', linkedTo, contents[i]!]);
    inputs.push({ name: `${prefix}file ${entry.path}`, value, label: `${what}: ${label}` });
  }
  return inputs;
}
