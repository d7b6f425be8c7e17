import { DockerfileError, DockerfileErrorCode } from './errors.js';
import { withSuggestion } from './suggest.js';
import { goQuote } from './text.js';

/**
 * `RUN --mount=...` specifications (BuildKit's `commands_runmount.go` and the defaults its
 * converter applies), parsed after variable expansion into one typed record per mount type.
 */

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

/** The raw fields of a mount after expansion, before defaults and validation across fields. */
export interface MountSpec {
  readonly type: MountType;
  readonly from?: string;
  readonly source?: string;
  readonly target?: string;
  readonly readOnly: boolean;
  readonly readOnlyExplicit: boolean;
  readonly id?: string;
  readonly sharing?: CacheSharing;
  readonly required: boolean;
  readonly env?: string;
  readonly sizeLimit?: number;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING: readonly CacheSharing[] = ['shared', 'private', 'locked'];
const ALL_KEYS = [
  'type',
  'from',
  'source',
  'target',
  'readonly',
  'id',
  'sharing',
  'required',
  'mode',
  'uid',
  'gid',
  'src',
  'dst',
  'destination',
  'ro',
  'rw',
  'readwrite',
  'size',
  'env',
];

function fail(message: string): DockerfileError {
  return new DockerfileError(DockerfileErrorCode.INVALID_MOUNT, message);
}

/** Go's `encoding/csv` reading one record (no lazy quotes, spaces kept). */
export function parseCsvRecord(line: string): string[] {
  if (line === '') throw fail('failed to parse csv mounts: EOF');
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let field = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q < 0) throw fail(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
        field += line.slice(i, q);
        i = q + 1;
        if (line[i] === '"') {
          field += '"';
          i++;
          continue;
        }
        break;
      }
      fields.push(field);
      if (i === line.length) return fields;
      if (line[i] !== ',') throw fail(`failed to parse csv mounts: extraneous or missing " in quoted-field`);
      i++;
      continue;
    }
    const comma = line.indexOf(',', i);
    const field = comma < 0 ? line.slice(i) : line.slice(i, comma);
    if (field.includes('"')) throw fail('failed to parse csv mounts: bare " in non-quoted-field');
    fields.push(field);
    if (comma < 0) return fields;
    i = comma + 1;
  }
}

/** The `from=` of a mount as written, for the dependency graph (variables are not allowed there). */
export function mountFrom(value: string): string | undefined {
  let from: string | undefined;
  for (const field of parseCsvRecord(value)) {
    const eq = field.indexOf('=');
    if (eq < 0 || field.slice(0, eq).toLowerCase() !== 'from') continue;
    from = field.slice(eq + 1);
    if (/\$[^]/.test(from)) throw fail("'from' doesn't support variable expansion, define alias stage instead");
  }
  return from;
}

function parseBool(key: string, value: string): boolean {
  // Go's strconv.ParseBool.
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw fail(`invalid value for ${key}: ${value}`);
}

function parseUint(value: string, base: 8 | 10, key: string): number {
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  const n = re.test(value) ? parseInt(value, base) : NaN;
  if (!Number.isFinite(n) || n > 0xffffffff) throw fail(`invalid value ${value} for ${key}`);
  return n;
}

const RAM_UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** docker/go-units `RAMInBytes`: `64m`, `1.5g`, `512KiB`… (binary units). */
function ramInBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(value);
  if (m === null) throw fail(`invalid value for size: ${value}`);
  const n = Number(m[1]);
  if (!Number.isFinite(n)) throw fail(`invalid value for size: ${value}`);
  return Math.trunc(n * RAM_UNITS[(m[2] ?? '').toLowerCase()]!);
}

/**
 * Parses one `--mount` value, each `key=value` field's value passed through `expand` (variable
 * expansion) first; throws `DOCKERFILE_INVALID_MOUNT`.
 */
export function parseMount(value: string, expand: (word: string) => string = (w) => w): MountSpec {
  let type: MountType = 'bind';
  let readOnly = false;
  let roAuto = true;
  let required = false;
  const m: {
    from?: string;
    source?: string;
    target?: string;
    id?: string;
    sharing?: CacheSharing;
    env?: string;
    sizeLimit?: number;
    mode?: number;
    uid?: number;
    gid?: number;
  } = {};
  for (const field of parseCsvRecord(value)) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') {
        readOnly = true;
        roAuto = false;
        continue;
      }
      if (key === 'readwrite' || key === 'rw') {
        readOnly = false;
        roAuto = false;
        continue;
      }
      if (key === 'required') {
        if (type !== 'secret' && type !== 'ssh') throw fail(`unexpected key '${key}' for mount type '${type}'`);
        required = true;
        continue;
      }
      throw fail(`invalid field '${field}' must be a key=value pair`);
    }
    const v = expand(field.slice(eq + 1));
    switch (key) {
      case 'type': {
        const t = v.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(t)) throw fail(withSuggestion(`unsupported mount type ${goQuote(v)}`, v, MOUNT_TYPES, true));
        type = t;
        break;
      }
      case 'from':
        m.from = v;
        break;
      case 'source':
      case 'src':
        m.source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = v;
        break;
      case 'readonly':
      case 'ro':
        readOnly = parseBool(key, v);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        readOnly = !parseBool(key, v);
        roAuto = false;
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw fail(`unexpected key '${key}' for mount type '${type}'`);
        required = parseBool(key, v);
        break;
      case 'size':
        if (type !== 'tmpfs') throw fail(`unexpected key '${key}' for mount type '${type}'`);
        m.sizeLimit = ramInBytes(v);
        break;
      case 'id':
        m.id = v;
        break;
      case 'sharing': {
        const s = v.toLowerCase() as CacheSharing;
        if (!SHARING.includes(s)) throw fail(`unsupported sharing value ${goQuote(v)}`);
        m.sharing = s;
        break;
      }
      case 'env':
        if (type !== 'secret') throw fail(`unexpected key '${key}' for mount type '${type}'`);
        m.env = v;
        break;
      case 'mode':
        m.mode = parseUint(v, 8, 'mode');
        break;
      case 'uid':
        m.uid = parseUint(v, 10, 'uid');
        break;
      case 'gid':
        m.gid = parseUint(v, 10, 'gid');
        break;
      default:
        throw fail(withSuggestion(`unexpected key '${key}' in '${field}'`, key, ALL_KEYS, true));
    }
  }

  const fileInfoAllowed = type === 'secret' || type === 'ssh' || type === 'cache';
  for (const k of ['mode', 'uid', 'gid'] as const) {
    if (m[k] !== undefined && !fileInfoAllowed) throw fail(`${k} not allowed for ${goQuote(type)} type mounts`);
  }
  if (roAuto) readOnly = !(type === 'cache' || type === 'tmpfs');
  if (m.sharing !== undefined && type !== 'cache') throw fail(`invalid cache sharing set for ${type} mount`);
  if (type === 'secret') {
    if (m.from !== undefined && m.from !== '') throw fail('secret mount should not have a from');
    if (m.source === undefined && m.target === undefined && m.id === undefined && m.env === undefined) {
      throw fail('invalid secret mount. one of source, target, id or env required');
    }
    if (m.source !== undefined && m.source !== '' && m.id !== undefined && m.id !== '') throw fail("both source and id can't be set");
  }
  if (type === 'ssh' && m.source !== undefined && m.source !== '') throw fail('ssh does not support source');
  return { type, readOnly, readOnlyExplicit: !roAuto, required, ...m };
}
