import { readTreeFile, UserNotFoundError, type FileTree } from './run/index.js';
import { OwnerSpecError } from './errors.js';

/**
 * `--chmod` and `--chown` of COPY and ADD (and the owner of WORKDIR's directories), with
 * BuildKit's file-operation rules.
 */

/** A parsed `--chmod`: applied to every copied entry but symlinks (not to created parents). */
export type ModeSpec = { readonly kind: 'octal'; readonly mode: number } | { readonly kind: 'symbolic'; readonly clauses: readonly SymbolicClause[] };

interface SymbolicClause {
  /** Permission bits the clause's `who` covers (0o777 subset). */
  readonly who: number;
  readonly whoLetters: string;
  readonly actions: readonly { readonly op: '+' | '-' | '='; readonly perms: string }[];
}

const CLAUSE = /^([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)$/;

/** Parses an octal (`755`, `0644`, `4755`) or symbolic (`u+x,go-w`, `a=rX`) mode. */
export function parseModeSpec(spec: string): ModeSpec {
  if (/^[0-7]+$/.test(spec)) {
    const mode = parseInt(spec, 8);
    if (mode > 0o7777) throw new OwnerSpecError(spec, 'a mode is at most 07777');
    return { kind: 'octal', mode };
  }
  const clauses: SymbolicClause[] = [];
  for (const text of spec.split(',')) {
    const m = CLAUSE.exec(text);
    if (m === null) throw new OwnerSpecError(spec, 'not an octal or symbolic mode');
    const letters = m[1] === '' ? 'a' : m[1]!;
    let who = 0;
    for (const l of letters) who |= l === 'u' ? 0o700 : l === 'g' ? 0o070 : l === 'o' ? 0o007 : 0o777;
    const actions = [...m[2]!.matchAll(/([-+=])([ugo]|[rwxXst]*)/g)].map((a) => ({ op: a[1] as '+' | '-' | '=', perms: a[2]! }));
    clauses.push({ who, whoLetters: letters, actions });
  }
  return { kind: 'symbolic', clauses };
}

/** The mode (`0o7777` bits) an entry gets under `spec`. */
export function applyModeSpec(spec: ModeSpec, mode: number, isDirectory: boolean): number {
  if (spec.kind === 'octal') return spec.mode;
  let result = mode & 0o7777;
  for (const clause of spec.clauses) {
    for (const { op, perms } of clause.actions) {
      let bits = 0;
      if (perms === 'u' || perms === 'g' || perms === 'o') {
        // Copy the permissions of one class to the classes of the clause.
        const shift = perms === 'u' ? 6 : perms === 'g' ? 3 : 0;
        const rwx = (result >> shift) & 0o7;
        bits = ((rwx << 6) | (rwx << 3) | rwx) & clause.who;
      } else {
        for (const p of perms) {
          if (p === 'r') bits |= 0o444 & clause.who;
          else if (p === 'w') bits |= 0o222 & clause.who;
          else if (p === 'x') bits |= 0o111 & clause.who;
          else if (p === 'X') bits |= isDirectory || (mode & 0o111) !== 0 ? 0o111 & clause.who : 0;
          else if (p === 's') bits |= (clause.who & 0o700 ? 0o4000 : 0) | (clause.who & 0o070 ? 0o2000 : 0);
          else if (p === 't') bits |= 0o1000;
        }
      }
      if (op === '+') result |= bits;
      else if (op === '-') result &= ~bits;
      else {
        const special = (clause.who & 0o700 ? 0o4000 : 0) | (clause.who & 0o070 ? 0o2000 : 0) | (clause.whoLetters.includes('o') || clause.whoLetters.includes('a') ? 0o1000 : 0);
        result = (result & ~(clause.who | special)) | bits;
      }
    }
  }
  return result & 0o7777;
}

/** Numeric owner ids. */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

export function isRootOwner(owner: Owner | undefined): boolean {
  return owner === undefined || (owner.uid === 0 && owner.gid === 0);
}

const MAX_ID = 0xffffffff;

function parseId(text: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}

/** `user[:group]` split, each part a number or a name. */
export interface OwnerSpec {
  readonly user: { readonly id: number } | { readonly name: string };
  readonly group?: { readonly id: number } | { readonly name: string } | undefined;
}

export function parseOwnerSpec(spec: string): OwnerSpec {
  const parts = spec.split(':');
  if (parts.length > 2 || parts[0] === '') throw new OwnerSpecError(spec, 'expected user[:group]');
  const part = (text: string): { id: number } | { name: string } => {
    const id = parseId(text);
    return id === undefined ? { name: text } : { id };
  };
  const group = parts[1];
  return { user: part(parts[0]!), group: group === undefined || group === '' ? undefined : part(group) };
}

/** Whether resolving the spec needs the image's /etc/passwd or /etc/group. */
export function ownerNeedsNames(spec: OwnerSpec): boolean {
  return 'name' in spec.user || (spec.group !== undefined && 'name' in spec.group);
}

/** The numeric owner of a spec that names no one by name. */
export function numericOwner(spec: OwnerSpec): Owner {
  if ('name' in spec.user || (spec.group !== undefined && 'name' in spec.group)) throw new RangeError('the owner spec has names');
  const uid = spec.user.id;
  // BuildKit: a user given by id alone also gives the group id.
  return { uid, gid: spec.group === undefined ? uid : (spec.group as { id: number }).id };
}

/** Bigger account files than this are refused rather than read whole. */
const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;

/**
 * Resolves an owner spec as BuildKit's file operations do: a user name through /etc/passwd
 * (its uid and primary gid), a user id as uid and gid, then the group (a name through
 * /etc/group) replaces the gid. The files are read inside `tree`.
 */
export async function resolveOwner(spec: string, tree: FileTree | undefined): Promise<Owner> {
  const parsed = parseOwnerSpec(spec);
  if (!ownerNeedsNames(parsed)) return numericOwner(parsed);
  if (tree === undefined) throw new OwnerSpecError(spec, 'names need the image files');
  let uid: number;
  let gid: number;
  if ('name' in parsed.user) {
    const name = parsed.user.name;
    const passwd = (await readTreeFile(tree, 'etc/passwd', MAX_ACCOUNT_FILE))?.toString('utf8') ?? '';
    const entry = accountLines(passwd).find((f) => f[0] === name && f.length >= 4);
    const entryUid = entry === undefined ? undefined : parseId(entry[2]!);
    const entryGid = entry === undefined ? undefined : parseId(entry[3]!);
    if (entryUid === undefined || entryGid === undefined) throw new UserNotFoundError(spec, `no user named ${JSON.stringify(name)} in /etc/passwd`);
    uid = entryUid;
    gid = entryGid;
  } else {
    uid = parsed.user.id;
    gid = uid;
  }
  if (parsed.group !== undefined) {
    if ('id' in parsed.group) {
      gid = parsed.group.id;
    } else {
      const name = parsed.group.name;
      const groups = (await readTreeFile(tree, 'etc/group', MAX_ACCOUNT_FILE))?.toString('utf8') ?? '';
      const entry = accountLines(groups).find((f) => f[0] === name && f.length >= 3);
      const entryGid = entry === undefined ? undefined : parseId(entry[2]!);
      if (entryGid === undefined) throw new UserNotFoundError(spec, `no group named ${JSON.stringify(name)} in /etc/group`);
      gid = entryGid;
    }
  }
  return { uid, gid };
}

function accountLines(text: string): string[][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}
