/**
 * Token scopes (distribution token spec): `repository:NAME:ACTION[,ACTION]`. A scope is kept as a
 * set of atoms (`repository:NAME:pull`) so "does this token cover that request" is a subset test,
 * whatever order or grouping the registry used.
 */

export type RepositoryAction = 'pull' | 'push' | 'delete';

export function repositoryScope(repository: string, actions: readonly RepositoryAction[]): string {
  return `repository:${repository}:${[...actions].sort().join(',')}`;
}

/** Splits a scope string into atoms. The name may contain ':' (a port); actions follow the last. */
export function scopeAtoms(scope: string): string[] {
  const last = scope.lastIndexOf(':');
  const first = scope.indexOf(':');
  if (first < 0 || last === first) return [scope];
  const prefix = scope.slice(0, last);
  return scope
    .slice(last + 1)
    .split(',')
    .filter((action) => action !== '')
    .map((action) => `${prefix}:${action}`);
}

/** The sorted, de-duplicated atoms of several scopes. */
export function normaliseScopes(scopes: readonly string[]): string[] {
  return [...new Set(scopes.flatMap(scopeAtoms))].sort();
}

/** Groups atoms back into one scope string per resource, for the token request. */
export function groupScopes(atoms: readonly string[]): string[] {
  const byResource = new Map<string, string[]>();
  for (const atom of atoms) {
    const last = atom.lastIndexOf(':');
    const resource = last < 0 ? atom : atom.slice(0, last);
    const action = last < 0 ? '' : atom.slice(last + 1);
    const list = byResource.get(resource) ?? [];
    if (action !== '') list.push(action);
    byResource.set(resource, list);
  }
  return [...byResource].map(([resource, actions]) => (actions.length === 0 ? resource : `${resource}:${[...new Set(actions)].sort().join(',')}`));
}
