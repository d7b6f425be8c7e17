import { UserNotFoundError } from './errors.js';
import { DirectoryTree, readTreeFile, type FileTree } from './tree.js';
import type { RunUser } from './types.js';

/** Bigger account files than this are refused rather than read whole. */
const MAX_ACCOUNT_FILE = 4 * 1024 * 1024;

interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

interface GroupEntry {
  readonly name: string;
  readonly gid: number;
  readonly members: readonly string[];
}

const MAX_ID = 0xffffffff;

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}

function lines(text: string): string[][] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split(':'));
}

export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const fields of lines(text)) {
    if (fields.length < 4) continue;
    const uid = parseId(fields[2]!);
    const gid = parseId(fields[3]!);
    if (uid !== undefined && gid !== undefined) entries.push({ name: fields[0]!, uid, gid, home: fields[5] ?? '' });
  }
  return entries;
}

export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const fields of lines(text)) {
    if (fields.length < 3) continue;
    const gid = parseId(fields[2]!);
    if (gid === undefined) continue;
    const members = (fields[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m !== '');
    entries.push({ name: fields[0]!, gid, members });
  }
  return entries;
}

/**
 * Resolves a Dockerfile `USER` value (`name`, `uid`, `name:group`, `uid:gid`, any mix) against
 * the image's /etc/passwd and /etc/group, with runc's rules (what Docker and BuildKit use):
 * - a name must exist in /etc/passwd; a number need not (its gid is then 0);
 * - without a group, the gid is the user's primary group and the supplementary groups are those
 *   of /etc/group that list the user by name;
 * - with a group, that is the gid and there are no supplementary groups; a group name must
 *   exist in /etc/group, a number need not.
 * `root` is a directory or any `FileTree` (e.g. a snapshot's merged view). The files are read
 * inside the root: a symlinked /etc/passwd is followed within it, never onto the host.
 */
export async function resolveUser(root: string | FileTree, spec: string): Promise<RunUser> {
  const tree = typeof root === 'string' ? new DirectoryTree(root) : root;
  const [userPart = '', groupPart, ...rest] = spec.split(':');
  if (rest.length > 0) throw new UserNotFoundError(spec, 'expected user[:group]');
  if (userPart === '' && (groupPart === undefined || groupPart === '')) return { uid: 0, gid: 0, additionalGids: [] };

  const passwd = parsePasswd((await readTreeFile(tree, 'etc/passwd', MAX_ACCOUNT_FILE))?.toString('utf8') ?? '');
  const userId = parseId(userPart);
  let matched: PasswdEntry | undefined;
  if (userPart === '') {
    matched = passwd.find((e) => e.uid === 0);
  } else if (userId !== undefined) {
    matched = passwd.find((e) => e.uid === userId);
  } else {
    matched = passwd.find((e) => e.name === userPart);
    if (matched === undefined) throw new UserNotFoundError(spec, `no user named ${JSON.stringify(userPart)} in /etc/passwd`);
  }
  const uid = matched?.uid ?? userId ?? 0;
  let gid = matched?.gid ?? 0;

  const explicitGroup = groupPart !== undefined && groupPart !== '';
  if (!explicitGroup && matched === undefined) return { uid, gid, additionalGids: [] };
  const groups = parseGroup((await readTreeFile(tree, 'etc/group', MAX_ACCOUNT_FILE))?.toString('utf8') ?? '');
  if (explicitGroup) {
    const groupId = parseId(groupPart);
    const group = groupId !== undefined ? groups.find((g) => g.gid === groupId) : groups.find((g) => g.name === groupPart);
    if (group !== undefined) gid = group.gid;
    else if (groupId !== undefined) gid = groupId;
    else throw new UserNotFoundError(spec, `no group named ${JSON.stringify(groupPart)} in /etc/group`);
    return { uid, gid, additionalGids: [] };
  }
  const additionalGids = [...new Set(groups.filter((g) => g.members.includes(matched!.name)).map((g) => g.gid))];
  return { uid, gid, additionalGids };
}
