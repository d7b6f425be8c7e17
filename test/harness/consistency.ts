import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Walks a stopped-or-running distribution registry's filesystem storage and lists every manifest
 * revision that references content the repository does not hold: a layer or config blob without
 * its `_layers` link or data, or an index child without its manifest revision. An empty list is
 * the invariant "the registry holds no manifest referencing a missing blob".
 */
export async function findDanglingReferences(rootDirectory: string): Promise<string[]> {
  const v2 = join(rootDirectory, 'docker', 'registry', 'v2');
  const problems: string[] = [];
  for (const repository of await repositories(join(v2, 'repositories'))) {
    const repoDir = join(v2, 'repositories', repository);
    const revisions = await list(join(repoDir, '_manifests', 'revisions', 'sha256'));
    for (const hex of revisions) {
      const manifestPath = blobData(v2, hex);
      let manifest: { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
      try {
        manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as typeof manifest;
      } catch {
        problems.push(`${repository}@sha256:${hex}: manifest data missing or unreadable`);
        continue;
      }
      const blobs = [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])];
      for (const { digest } of blobs) {
        const blobHex = digest.slice('sha256:'.length);
        if (!(await exists(join(repoDir, '_layers', 'sha256', blobHex, 'link')))) problems.push(`${repository}@sha256:${hex} → ${digest}: not linked in the repository`);
        if (!(await exists(blobData(v2, blobHex)))) problems.push(`${repository}@sha256:${hex} → ${digest}: blob data missing`);
      }
      for (const { digest } of manifest.manifests ?? []) {
        const childHex = digest.slice('sha256:'.length);
        if (!revisions.includes(childHex)) problems.push(`${repository}@sha256:${hex} → ${digest}: child manifest missing`);
      }
    }
  }
  return problems;
}

function blobData(v2: string, hex: string): string {
  return join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

/** Repository names: directories below `repositories/` that contain `_manifests` or `_layers`. */
async function repositories(dir: string, prefix = ''): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await list(dir)) {
    if (entry.startsWith('_')) continue;
    const path = join(dir, entry);
    const children = await list(path);
    if (children.includes('_manifests') || children.includes('_layers') || children.includes('_uploads')) names.push(`${prefix}${entry}`);
    names.push(...(await repositories(path, `${prefix}${entry}/`)));
  }
  return names;
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
