/**
 * Path helpers with Go's semantics, since the copy rules are BuildKit's: `path.Clean`,
 * `filepath.Match`, and the wildcard handling of fsutil's copy. Paths inside a root are
 * "relative normalised" (`usr/bin`, `''` for the root) unless a name says otherwise.
 */

// Go's `path.Clean`, shared with the Dockerfile frontend (which cleans destinations the same way).
import { cleanPath, goPatternRegExp } from '../dockerfile/index.js';

export { cleanPath };

/** An absolute or relative in-root path as a relative normalised one (`/usr/bin/` → `usr/bin`, `/` → `''`). */
export function rootRelative(p: string): string {
  const cleaned = cleanPath(`/${p}`);
  return cleaned === '/' ? '' : cleaned.slice(1);
}

/** Joins relative normalised paths (`''` is the root). */
export function joinPath(parent: string, name: string): string {
  if (parent === '') return name;
  if (name === '') return parent;
  return `${parent}/${name}`;
}

export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

export function baseName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  return slash < 0 ? trimmed : trimmed.slice(slash + 1);
}

/** The components of a relative normalised path. */
export function pathComponents(path: string): string[] {
  return path === '' ? [] : path.split('/');
}

/** Whether `name` has an unescaped `*`, `?` or `[` (fsutil's `containsWildcards`). */
export function containsWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const ch = name[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

/**
 * fsutil's `splitWildcards`: the part of a path before its first component with a wildcard,
 * and the rest (`/src/*.go/x` → `/src`, `*.go/x`). `rest` is empty when there is no wildcard.
 */
export function splitWildcards(path: string): { readonly base: string; readonly pattern: string } {
  const parts = cleanPath(path).split('/');
  const base: string[] = [];
  const pattern: string[] = [];
  let found = false;
  for (const part of parts) {
    if (!found && containsWildcards(part)) found = true;
    (found ? pattern : base).push(part);
  }
  const joinedBase = base.join('/');
  return { base: joinedBase === '' ? (path.startsWith('/') ? '/' : '.') : joinedBase, pattern: pattern.join('/') };
}

const matchers = new Map<string, RegExp | null>();

/**
 * Go's `filepath.Match` on `/`-separated names: `*` is any run of characters but `/`, `?` one
 * character but `/`, `[...]` a class (`[^...]` negated, ranges, `\` escapes), `\` escapes the
 * next character. A malformed pattern matches nothing (BuildKit ignores the error).
 */
export function goMatch(pattern: string, name: string): boolean {
  let re = matchers.get(pattern);
  if (re === undefined) {
    const compiled = goPatternRegExp(pattern);
    re = 'regexp' in compiled ? compiled.regexp : null;
    if (matchers.size > 1024) matchers.clear();
    matchers.set(pattern, re);
  }
  return re !== null && re.test(name);
}

/**
 * fsutil's `prefix.Match`, used for `COPY --parents` include patterns: `match` when `name`
 * matches the pattern's first components (as many as `name` has), and `partial` when the
 * pattern has more components than `name` (a directory on the way to a match).
 */
export function prefixMatch(pattern: string, name: string): { readonly match: boolean; readonly partial: boolean } {
  const count = name.split('/').length - 1;
  const parts = pattern.split('/');
  if (parts.length - 1 > count) {
    return { match: goMatch(parts.slice(0, count + 1).join('/'), name), partial: true };
  }
  return { match: goMatch(pattern, name), partial: false };
}
