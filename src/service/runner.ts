import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { throwIfAborted } from '../errors.js';
import { build, type BuildEvent } from '../build/index.js';
import { copyGraph, parseReference, type Digest } from '../oci/index.js';
import { RegistryClientPool, type CredentialProvider, type RegistryClientOptions } from '../registry/index.js';
import { registryHostOf, type RegistryAuthPolicy } from './auth.js';
import type { ServiceConfig } from './config.js';
import { ServiceError } from './errors.js';
import { materializeWorkspace, workspacePath } from './initializer/index.js';
import type { BuildRecord } from './record.js';
import { BuildEventRenderer } from './render.js';
import type { ImageBuildSource } from './types.js';

/** What a real build needs to know, decided before it was started. */
export interface BuildPlan {
  readonly source: ImageBuildSource;
  /** `<baseRepo>:<hash>` for a Dockerfile source, `name@digest` for a reference source. */
  readonly baseRef: string;
  readonly workspaceRef: string;
  readonly auth: RegistryAuthPolicy;
  /** `force_rebuild`: every step runs again (mk3's build workspaces never had a step cache). */
  readonly forceRebuild?: boolean | undefined;
}

export interface RunnerEnvironment {
  readonly config: ServiceConfig;
  readonly clientOptions: RegistryClientOptions;
  /** The installation's credentials (pull secret). */
  readonly installation: CredentialProvider;
  /** Observes every build event (metrics). Must not throw. */
  readonly onBuildEvent?: ((event: BuildEvent) => void) | undefined;
}

/**
 * Runs one build (decisions 1 and 2): materialise the context from the initializer into a fresh
 * directory, build the Dockerfile and push it to the base ref, then tag the same manifest as the
 * workspace ref (blobs mounted across repositories, no re-upload). A reference source skips
 * straight to the tagging. The work directory is removed whatever happens. Resolves with the
 * manifest digest; rejects with the build's typed error.
 */
export async function runBuildPlan(record: BuildRecord, plan: BuildPlan, env: RunnerEnvironment, signal: AbortSignal): Promise<Digest> {
  throwIfAborted(signal);
  const { stevedore, orchestrator } = env.config;
  await mkdir(stevedore.workDir, { recursive: true });
  const dir = await mkdtemp(join(stevedore.workDir, 'build-'));
  const pool = new RegistryClientPool({ ...env.clientOptions, credentials: buildCredentials(plan.auth, env, orchestrator) });
  try {
    let digest: Digest;
    if (plan.source.kind === 'file') {
      digest = await buildDockerfile(record, plan, plan.source, env, pool, dir, signal);
    } else {
      const pinned = parseReference(plan.baseRef);
      if (pinned.digest === undefined) throw new ServiceError('INTERNAL', `the base image ${plan.baseRef} is not pinned by digest`);
      digest = pinned.digest;
    }
    record.log.line(`tagging ${digest} as the workspace image`);
    await tagWorkspaceImage(pool, plan.baseRef, digest, plan.workspaceRef, signal);
    record.log.line(`tagged the workspace image ${plan.workspaceRef}`);
    return digest;
  } finally {
    await pool.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
  }
}

/**
 * The build's registry credentials, as mk3 hands them to bob: the installation's for the
 * service's own repositories (where it pushes), the request's policy for everything else (base
 * images named in FROM), the user's own entry as the fallback.
 */
function buildCredentials(auth: RegistryAuthPolicy, env: RunnerEnvironment, orchestrator: ServiceConfig['orchestrator']): CredentialProvider {
  const own = new Set([registryHostOf(orchestrator.baseImageRepository), registryHostOf(orchestrator.workspaceImageRepository)]);
  return async (host) => {
    if (own.has(host)) return (await env.installation(host)) ?? auth.userCredentialFor(host);
    return auth.credentialFor(host);
  };
}

async function buildDockerfile(
  record: BuildRecord,
  plan: BuildPlan,
  source: Extract<ImageBuildSource, { kind: 'file' }>,
  env: RunnerEnvironment,
  pool: RegistryClientPool,
  dir: string,
  signal: AbortSignal,
): Promise<Digest> {
  const root = join(dir, 'workspace');
  const scratch = join(dir, 'scratch');
  await mkdir(root, { recursive: true });
  await mkdir(scratch, { recursive: true, mode: 0o700 });
  record.log.line('initializing the build context');
  await materializeWorkspace(source.initializer ?? { kind: 'empty' }, root, {
    signal,
    scratchDir: scratch,
    onSecret: (secret) => record.log.censor.add([secret], '***'),
    log: (line) => record.log.line(line),
  });

  // mk3 §4 step 8: paths relative to the workspace root; an empty context is the Dockerfile's directory.
  const dockerfile = workspacePath(root, source.dockerfilePath, 'dockerfile_path');
  const context = source.contextPath === '' ? dirname(dockerfile) : workspacePath(root, source.contextPath, 'context_path');
  const dockerfileStat = await stat(dockerfile).catch(() => undefined);
  if (dockerfileStat === undefined || !dockerfileStat.isFile()) {
    throw new ServiceError('FAILED_PRECONDITION', `the Dockerfile ${JSON.stringify(relative(root, dockerfile) || source.dockerfilePath)} does not exist in the build context`);
  }
  const contextStat = await stat(context).catch(() => undefined);
  if (contextStat === undefined || !contextStat.isDirectory()) {
    throw new ServiceError('FAILED_PRECONDITION', `the build context ${JSON.stringify(relative(root, context) || '.')} is not a directory`);
  }
  record.log.line(`build context ready: ${relative(root, context) || '.'}, Dockerfile ${relative(root, dockerfile)}`);

  const renderer = new BuildEventRenderer();
  // Typed loosely on purpose: engines without a step cache have no `noCache` and ignore it.
  const cacheOptions: { readonly noCache?: boolean } = plan.forceRebuild === true ? { noCache: true } : {};
  const job = build({
    ...cacheOptions,
    context,
    dockerfile,
    outputs: [{ type: 'registry', reference: plan.baseRef }],
    registries: pool,
    // The engine keeps its own temporary files under the cache directory, on the cache's filesystem.
    cacheDir: env.config.stevedore.cacheDir,
    runExecutor: env.config.stevedore.runExecutor,
    signal,
  });
  const rendering = (async () => {
    for await (const event of job.events) {
      try {
        env.onBuildEvent?.(event);
      } catch {
        // Metrics must not break a build.
      }
      for (const line of renderer.render(event)) record.log.line(line);
    }
  })();
  try {
    const result = await job.result;
    return result.digest;
  } finally {
    await rendering;
  }
}

/**
 * Tags the base image's manifest as the workspace ref: a graph copy whose blobs are mounted from
 * the base repository when both live on one registry (so nothing is uploaded twice), then a
 * manifest PUT under the tag.
 */
async function tagWorkspaceImage(pool: RegistryClientPool, baseRef: string, digest: Digest, workspaceRef: string, signal: AbortSignal): Promise<void> {
  const base = parseReference(baseRef);
  const target = parseReference(workspaceRef);
  if (target.tag === undefined) throw new ServiceError('INTERNAL', `the workspace ref ${workspaceRef} has no tag`);
  const src = pool.repository(base);
  const dst = pool.repository(target);
  const root = await src.resolve(digest, { signal });
  const sameRegistry = base.registry === target.registry;
  await copyGraph(src, dst, root, { signal, ...(sameRegistry ? { mountFrom: () => base.repository } : {}) });
  await dst.tag(root, target.tag, { signal });
}
