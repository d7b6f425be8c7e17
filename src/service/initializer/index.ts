import { throwIfAborted } from '../../errors.js';
import { checkSupported } from '../refs.js';
import type { WorkspaceInitializerSpec } from '../types.js';
import type { InitializerContext } from './context.js';
import { downloadInitializer } from './download.js';
import { gitInitializer } from './git.js';

export { InitializerError, type InitializerContext } from './context.js';
export { workspacePath, WORKSPACE_PREFIX } from './paths.js';

/**
 * Fills `root` (the workspace root, an empty directory) from an initializer: git, download,
 * composite (in order) or empty. Snapshot, prebuild and backup restore workspaces rather than
 * make build contexts: INVALID_ARGUMENT, before anything runs.
 */
export async function materializeWorkspace(spec: WorkspaceInitializerSpec, root: string, ctx: InitializerContext): Promise<void> {
  checkSupported(spec);
  await run(spec, root, ctx);
}

async function run(spec: WorkspaceInitializerSpec, root: string, ctx: InitializerContext): Promise<void> {
  throwIfAborted(ctx.signal);
  switch (spec.kind) {
    case 'empty':
      return;
    case 'git':
      return gitInitializer(spec, root, ctx);
    case 'download':
      return downloadInitializer(spec, root, ctx);
    case 'composite':
      for (const child of spec.initializers) await run(child, root, ctx);
      return;
    default:
      // checkSupported has refused the rest.
      return;
  }
}
