import { chmod, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerignoreMatcher, type AddStep, type CopyStep } from '../dockerfile/index.js';
import { detectArchive, extractArchive } from './archive.js';
import { ContextEscapeError, CopyDestinationError, CopySourceNotFoundError } from './errors.js';
import { CopyPlan, type CopyOptions } from './copy.js';
import { numericOwner, ownerNeedsNames, parseModeSpec, parseOwnerSpec, resolveOwner, type Owner } from './modes.js';
import { cleanPath, containsWildcards, goMatch, joinPath, rootRelative, splitWildcards } from './paths.js';
import { checkoutGit, downloadFile, isGitSource, isHttpSource, parseGitSource } from './remote.js';
import type { BuildRuntime } from './runtime.js';
import { directorySourceTree, fileSourceTree, resolveSourcePath, sortedChildren, type ResolvedSource, type SourceTree } from './source-tree.js';
import type { StageRootfs } from './rootfs.js';
import { EMPTY_VIEW } from './view.js';
import type { Platform } from '../oci/index.js';

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
