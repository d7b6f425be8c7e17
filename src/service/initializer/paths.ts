import { isAbsolute, relative, resolve } from 'node:path';
import { ServiceError } from '../errors.js';

/**
 * Paths in initializers and Dockerfile sources are relative to the workspace root, which mk3's
 * build workspaces mount at `/workspace` (clients send `/workspace/x`, `x`, `./x` or `.`): the
 * prefix is stripped and the result must stay inside `root`.
 */
export const WORKSPACE_PREFIX = '/workspace';

export function workspacePath(root: string, path: string, what: string): string {
  let rel = path;
  if (rel === WORKSPACE_PREFIX || rel.startsWith(`${WORKSPACE_PREFIX}/`)) rel = rel.slice(WORKSPACE_PREFIX.length);
  rel = rel.replace(/^\/+/, '');
  if (rel.includes('\0')) throw new ServiceError('INVALID_ARGUMENT', `${what} contains a NUL byte`);
  const absolute = resolve(root, rel === '' ? '.' : rel);
  const inside = relative(root, absolute);
  if (inside === '..' || inside.startsWith('../') || isAbsolute(inside)) {
    throw new ServiceError('INVALID_ARGUMENT', `${what} ${JSON.stringify(path)} leaves the workspace`);
  }
  return absolute;
}
