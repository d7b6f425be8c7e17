import { UnsafeArchiveError } from './errors.js';

/**
 * The file types a layer can hold. Sockets are not archivable (tar has no type for them) and
 * every source skips them, as Docker and BuildKit do.
 */
export type LayerEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo';

/**
 * One filesystem object to archive, as a source describes it. Plain data plus an `open` for the
 * bytes of regular files, so a directory, a build context, an overlay upper directory or another
 * tar stream can all feed the same writer.
 */
export interface LayerEntry {
  /**
   * Relative, `/`-separated, without a leading `/` or `./`, without a trailing `/`, and with no
   * empty, `.` or `..` component: `usr/bin/env`, `etc`.
   */
  readonly path: string;
  readonly type: LayerEntryType;
  /** Permission bits including setuid, setgid and sticky (`0o7777`); the file type is `type`. */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly uname?: string | undefined;
  readonly gname?: string | undefined;
  /** Content length of a regular file; 0 for every other type. */
  readonly size: number;
  /** Modification time in seconds since the epoch. The writer records whole seconds. */
  readonly mtime: number;
  /** The target of a symlink (any text) or of a hardlink (the `path` of an earlier entry). */
  readonly linkname?: string | undefined;
  readonly devmajor?: number | undefined;
  readonly devminor?: number | undefined;
  /** Extended attributes by full name (`security.capability`, `user.foo`), raw values. */
  readonly xattrs?: Readonly<Record<string, Uint8Array>> | undefined;
  /**
   * The content of a regular file, exactly `size` bytes. Called at most once, right after the
   * entry was produced and before the next one is requested. Absent when `size` is 0. A chunk
   * belongs to the consumer once yielded: the source must not reuse its memory.
   */
  open?(): AsyncIterable<Uint8Array>;
  /**
   * A host file holding exactly the content, when there is one (a build context's file): a
   * consumer that writes files may have the kernel copy it instead of calling `open`. Archive
   * writers ignore it.
   */
  readonly hostPath?: string | undefined;
}

/**
 * A source of layer entries, in archive order: parents before their children. The sources of
 * this module yield a depth-first walk with each directory's names in byte order (see
 * `comparePaths`), which is what Docker and BuildKit produce and what makes output deterministic.
 */
export type LayerSource = AsyncIterable<LayerEntry>;

/** The prefix that marks a whiteout: `dir/.wh.name` deletes `dir/name` of the lower layers. */
export const WHITEOUT_PREFIX = '.wh.';
/** The opaque whiteout: `dir/.wh..wh..opq` hides every child of `dir` in the lower layers. */
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
/** aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`) shares this prefix and is ignored on apply. */
export const WHITEOUT_META_PREFIX = '.wh..wh.';

/** The whiteout entry path that deletes `path` (`a/b` → `a/.wh.b`). */
export function whiteoutPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? `${WHITEOUT_PREFIX}${path}` : `${path.slice(0, slash + 1)}${WHITEOUT_PREFIX}${path.slice(slash + 1)}`;
}

/** The opaque whiteout entry path for directory `dir` (`''` is the root). */
export function opaqueWhiteoutPath(dir: string): string {
  return dir === '' ? OPAQUE_WHITEOUT : `${dir}/${OPAQUE_WHITEOUT}`;
}

/** The parent of a normalised path (`''` for a top-level name) and its base name. */
export function splitPath(path: string): { readonly parent: string; readonly base: string } {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? { parent: '', base: path } : { parent: path.slice(0, slash), base: path.slice(slash + 1) };
}

/**
 * Orders normalised paths the way a depth-first walk with byte-sorted directory listings visits
 * them: component by component, comparing UTF-8 bytes. That is plain byte order with `/` ranked
 * below every other byte, so `a`, `a/x`, `a-b` (not `a`, `a-b`, `a/x`). Every parent sorts
 * before its children. UTF-16 code units are compared so that the result equals UTF-8 byte
 * order: surrogates (code points above U+FFFF) rank above every other BMP unit.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

function rank(unit: number): number {
  if (unit === 0x2f) return -1;
  return unit >= 0xd800 && unit <= 0xdfff ? unit + 0x10000 : unit;
}

/**
 * Normalises a name read from an archive: leading `/` and `./` are dropped (absolute names are
 * taken relative to the root, as Docker and containerd do), empty and `.` components vanish,
 * and any `..` component is refused: no legitimate layer needs one and a lexical clean would
 * hide intent. Returns `''` for the root itself.
 */
export function normalizeArchivePath(name: string): string {
  // Fast path, taken by nearly every name (GNU tar writes `./usr/bin/env`): one regular expression.
  const rest = name.startsWith('./') ? name.slice(2) : name;
  if (rest !== '' && !NOT_NORMALIZED.test(rest)) return rest;
  if (name.includes('\0')) throw new UnsafeArchiveError('invalid-name', name, 'the name contains a NUL byte');
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UnsafeArchiveError('path-traversal', name, 'the name has a ".." component');
    parts.push(part);
  }
  return parts.join('/');
}

/** True when `path` is already in the normalised form `LayerEntry.path` requires. */
export function isNormalizedPath(path: string): boolean {
  return path !== '' && !NOT_NORMALIZED.test(path);
}

/** An empty, `.` or `..` component (a leading or trailing `/` makes an empty one), or a NUL. */
const NOT_NORMALIZED = /(?:^|\/)\.{0,2}(?:\/|$)|\0/;
