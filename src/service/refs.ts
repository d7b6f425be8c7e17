import { createHash } from 'node:crypto';
import { formatReference, parseReference, referenceName } from '../oci/index.js';
import { ServiceError } from './errors.js';
import type { DockerfileBuildSource, WorkspaceInitializerSpec } from './types.js';

/**
 * Image references as mk3 computes them (SPEC-gitpod.md §3), so an existing registry of built
 * images keeps working: the base image of a Dockerfile source is `<baseRepo>:<sha256 of its
 * description>`, the workspace image `<workspaceRepo>:<sha256 of "<baseref>\n2\n">`.
 */

/** mk3's `workspaceBuildProcessVersion`: part of every workspace ref's hash. */
export const WORKSPACE_BUILD_PROCESS_VERSION = 2;

/**
 * mk3's hash over a string map: `Key: value\n` per key in byte order, then one more `\n` (mk2's
 * empty salt, kept for compatibility).
 */
export function hashFields(fields: Readonly<Record<string, string>>): string {
  const keys = Object.keys(fields).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const text = keys.map((key) => `${key}: ${fields[key]}\n`).join('');
  return createHash('sha256').update(`${text}\n`).digest('hex');
}

/**
 * The fields hashed into a Dockerfile source's base ref. For a git initializer exactly mk3's
 * (Source, CloneTarget, RemoteURI, DockerfilePath, DockerfileVersion, ContextPath). mk3 rejects
 * every other initializer; Stevedore builds from `download`, `composite` and `empty` too and
 * hashes a canonical description of them (no credentials: download initializers are content
 * addressed by their digests), under keys mk3 never uses, so no mk3 ref can collide with them.
 */
export function baseRefFields(source: DockerfileBuildSource): Record<string, string> {
  const fields: Record<string, string> = {
    DockerfilePath: source.dockerfilePath,
    DockerfileVersion: source.dockerfileVersion,
    ContextPath: source.contextPath,
  };
  const init = source.initializer;
  if (init === undefined) throw new ServiceError('INVALID_ARGUMENT', 'the Dockerfile source has no context initializer');
  if (init.kind === 'git') {
    fields.Source = 'git';
    fields.CloneTarget = init.cloneTarget;
    fields.RemoteURI = init.remoteUri;
    return fields;
  }
  checkSupported(init);
  fields.Source = init.kind;
  fields.StevedoreInitializer = JSON.stringify(describeInitializer(init));
  return fields;
}

/** `<baseImageRepository>:<hash>` for a Dockerfile source (no registry access). */
export function dockerfileBaseRef(source: DockerfileBuildSource, baseImageRepository: string): string {
  return `${baseImageRepository}:${hashFields(baseRefFields(source))}`;
}

/** `<workspaceImageRepository>:<sha256 of "<baseRef>\n2\n">`. The supervisor ref is not part of it. */
export function workspaceImageRef(baseRef: string, workspaceImageRepository: string): string {
  const hash = createHash('sha256').update(`${baseRef}\n${WORKSPACE_BUILD_PROCESS_VERSION}\n`).digest('hex');
  return `${workspaceImageRepository}:${hash}`;
}

/** Snapshot, prebuild and backup restore workspaces; a build context cannot come from them. */
export function checkSupported(init: WorkspaceInitializerSpec): void {
  if (init.kind === 'snapshot' || init.kind === 'prebuild' || init.kind === 'backup') {
    throw new ServiceError('INVALID_ARGUMENT', `the ${init.kind} initializer is not supported for image builds (use git, download, composite or empty)`);
  }
  if (init.kind === 'composite') init.initializers.forEach(checkSupported);
}

/** A canonical, credential-free description of an initializer, for hashing. */
function describeInitializer(init: WorkspaceInitializerSpec): unknown {
  switch (init.kind) {
    case 'empty':
      return { kind: 'empty' };
    case 'git':
      return {
        kind: 'git',
        remoteUri: init.remoteUri,
        cloneTarget: init.cloneTarget,
        targetMode: init.targetMode,
        checkoutLocation: init.checkoutLocation,
      };
    case 'download':
      return {
        kind: 'download',
        targetLocation: init.targetLocation,
        files: init.files.map((f) => ({ filePath: f.filePath, digest: f.digest })),
      };
    case 'composite':
      return { kind: 'composite', initializers: init.initializers.map(describeInitializer) };
    default:
      return { kind: init.kind };
  }
}

/**
 * The strings a build's log must never show (mk3's censoring): both refs, and their repository
 * names (mk3 cut each ref at its first colon, which for a `host:port` registry is only the host;
 * the repository name is what it meant).
 */
export function refCensorWords(...refs: readonly string[]): string[] {
  const words = new Set<string>();
  for (const ref of refs) {
    if (ref === '') continue;
    words.add(ref);
    try {
      const parsed = parseReference(ref);
      words.add(referenceName(parsed));
      words.add(formatReference(parsed));
    } catch {
      // Not a reference we can parse (it was still used verbatim): the full string suffices.
    }
  }
  return [...words];
}
