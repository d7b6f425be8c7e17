import type { LayerEntry, LayerEntryType } from './entry.js';
import { InvalidArchiveError } from './errors.js';

/**
 * The tar header format, written and read by hand rather than through tar-stream so that the
 * bytes of a layer are fixed by this file alone (a digest must not change because a dependency
 * was upgraded) and because tar-stream's writer truncates mtimes to 32 bits, writes uids above
 * 2097151 as 7777777 and stringifies PAX values (which corrupts binary xattrs such as
 * `security.capability`).
 *
 * Output follows Go's archive/tar (what Docker, BuildKit and containerd write): a POSIX ustar
 * header, preceded by a PAX extended header (`x`) only when a field does not fit: a non-ASCII or
 * long name or link target, a size of 8 GiB or more, an id above 0o7777777, a long user name, an
 * mtime outside the octal range, or xattrs (`SCHILY.xattr.*`). Numbers are zero-padded octal
 * ending in NUL; the checksum is six digits, NUL, space. No trailing record padding after the
 * two zero blocks that end the archive.
 */

export const BLOCK_SIZE = 512;
export const END_OF_ARCHIVE = new Uint8Array(2 * BLOCK_SIZE);

const TYPEFLAG: Readonly<Record<LayerEntryType, number>> = {
  file: 0x30, // '0'
  hardlink: 0x31, // '1'
  symlink: 0x32, // '2'
  'char-device': 0x33, // '3'
  'block-device': 0x34, // '4'
  directory: 0x35, // '5'
  fifo: 0x36, // '6'
};
const TYPEFLAG_PAX = 0x78; // 'x'

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Node's native Latin-1 slice, which takes any Uint8Array: one call per ASCII header field. */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice(this: Uint8Array, start: number, end: number): string }).latin1Slice;

/** Number of bytes of padding after `size` bytes of content to reach a block boundary. */
export function paddingFor(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** Drops non-ASCII characters and cuts to `max` bytes: the ustar fallback of a PAX-carried string. */
function asciiFallback(s: string, max: number): string {
  let out = '';
  for (const ch of s) if (ch.charCodeAt(0) <= 0x7f) out += ch;
  return out.slice(0, max);
}

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  // Header fields hold ASCII (other text goes to PAX records, see encodeHeader): no encoder call
  // for the common case, which runs several times per entry.
  const n = Math.min(value.length, length);
  for (let i = 0; i < n; i++) {
    const code = value.charCodeAt(i);
    if (code > 0x7f) {
      block.set(encoder.encode(value).subarray(0, length), offset);
      return;
    }
    block[offset + i] = code;
  }
}

/** Zero-padded octal of `length - 1` digits followed by NUL. */
function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  // Digit by digit from the right (values reach 8^11, beyond 32-bit bitwise operators).
  let v = value;
  for (let i = offset + length - 2; i >= offset; i--) {
    block[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  block[offset + length - 1] = 0;
}

/** GNU base-256: a leading 0x80 byte, then the big-endian value. Readers that know PAX ignore it. */
function writeBase256(block: Uint8Array, offset: number, length: number, value: number): void {
  let v = value;
  for (let i = length - 1; i > 0; i--) {
    block[offset + i] = v % 256;
    v = Math.floor(v / 256);
  }
  block[offset] = 0x80;
}

function writeNumber(block: Uint8Array, offset: number, length: number, value: number): void {
  const maxOctal = 8 ** (length - 1) - 1;
  if (value >= 0 && value <= maxOctal) writeOctal(block, offset, length, value);
  else if (value > maxOctal) writeBase256(block, offset, length, value);
  else writeOctal(block, offset, length, 0); // negative (only mtime): the PAX record carries it
}

/** The unsigned header checksum: every byte summed, the checksum field's own eight counted as spaces. */
function checksum(block: Uint8Array): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK_SIZE; i++) sum += block[i]!;
  return sum;
}

function finishBlock(block: Uint8Array): Uint8Array {
  writeOctal(block, 148, 7, checksum(block));
  block[155] = 0x20;
  return block;
}

/** ustar splits a long name into prefix (155 bytes) and name (100 bytes) at a `/`. */
function splitUstarName(name: string): { readonly prefix: string; readonly name: string } | undefined {
  if (name.length <= 100) return { prefix: '', name };
  // The shortest prefix that leaves at most 100 bytes: one fixed choice keeps output stable.
  for (let i = name.indexOf('/'); i >= 0 && i <= 155; i = name.indexOf('/', i + 1)) {
    const rest = name.length - i - 1;
    if (rest > 0 && rest <= 100) return { prefix: name.slice(0, i), name: name.slice(i + 1) };
  }
  return undefined;
}

/** Adds a PAX record, making the map on the first (most entries need none). */
function withRecord(pax: Map<string, Uint8Array> | undefined, key: string, value: Uint8Array): Map<string, Uint8Array> {
  return (pax ?? new Map<string, Uint8Array>()).set(key, value);
}

function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const body = encoder.encode(` ${key}=`);
  const rest = body.byteLength + value.byteLength + 1;
  // The length prefix counts its own digits: try the width of `rest`, then one more digit.
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  const record = new Uint8Array(length);
  const prefix = encoder.encode(String(length));
  record.set(prefix, 0);
  record.set(body, prefix.byteLength);
  record.set(value, prefix.byteLength + body.byteLength);
  record[length - 1] = 0x0a;
  return record;
}

interface HeaderFields {
  readonly name: string;
  readonly typeflag: number;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly linkname: string;
  readonly uname: string;
  readonly gname: string;
  readonly devmajor: number;
  readonly devminor: number;
}

/** Writes a ustar header block into `block` (every byte of it: a reused block is cleared first). */
function encodeUstar(f: HeaderFields, block: Uint8Array = new Uint8Array(BLOCK_SIZE)): Uint8Array {
  block.fill(0, 0, BLOCK_SIZE);
  let name = f.name;
  let prefix = '';
  if (name.length > 100) {
    const split = splitUstarName(name);
    name = split?.name ?? name.slice(0, 100);
    prefix = split?.prefix ?? '';
  }
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, f.mode & 0o7777);
  writeNumber(block, 108, 8, f.uid);
  writeNumber(block, 116, 8, f.gid);
  writeNumber(block, 124, 12, f.size);
  writeNumber(block, 136, 12, f.mtime);
  block[156] = f.typeflag;
  writeString(block, 157, 100, f.linkname);
  writeString(block, 257, 8, 'ustar\x0000');
  writeString(block, 265, 32, f.uname);
  writeString(block, 297, 32, f.gname);
  writeNumber(block, 329, 8, f.devmajor);
  writeNumber(block, 337, 8, f.devminor);
  writeString(block, 345, 155, prefix);
  return finishBlock(block);
}

/**
 * The header block(s) of an entry: a PAX extended header (block, records, padding) when some
 * field needs one, then the ustar block. `entry.path` must already be normalised. An entry that
 * needs no PAX header is written into `block` when one is given (a writer reuses one block for
 * every entry: a fresh 512-byte array per file is most of what a tar of small files allocates).
 */
export function encodeHeader(entry: LayerEntry, block?: Uint8Array): Uint8Array {
  const name = entry.type === 'directory' ? `${entry.path}/` : entry.path;
  const linkname = entry.type === 'symlink' || entry.type === 'hardlink' ? (entry.linkname ?? '') : '';
  const size = entry.type === 'file' ? entry.size : 0;
  // Whole seconds only: sub-second times would make byte-equal trees produce different tars.
  const mtime = Math.floor(entry.mtime);
  const uname = entry.uname ?? '';
  const gname = entry.gname ?? '';
  let pax: Map<string, Uint8Array> | undefined;

  const asciiName = isAscii(name);
  if (!asciiName || (name.length > 100 && splitUstarName(name) === undefined)) pax = withRecord(pax, 'path', encoder.encode(name));
  if (!isAscii(linkname) || linkname.length > 100) pax = withRecord(pax, 'linkpath', encoder.encode(linkname));
  if (size > MAX_OCTAL_11) pax = withRecord(pax, 'size', encoder.encode(String(size)));
  if (entry.uid > MAX_OCTAL_7) pax = withRecord(pax, 'uid', encoder.encode(String(entry.uid)));
  if (entry.gid > MAX_OCTAL_7) pax = withRecord(pax, 'gid', encoder.encode(String(entry.gid)));
  if (mtime < 0 || mtime > MAX_OCTAL_11) pax = withRecord(pax, 'mtime', encoder.encode(String(mtime)));
  if (!isAscii(uname) || uname.length > 32) pax = withRecord(pax, 'uname', encoder.encode(uname));
  if (!isAscii(gname) || gname.length > 32) pax = withRecord(pax, 'gname', encoder.encode(gname));
  if (entry.xattrs !== undefined) for (const key in entry.xattrs) pax = withRecord(pax, `SCHILY.xattr.${key}`, entry.xattrs[key]!);

  const ustar = encodeUstar(
    {
      name: asciiName ? name : asciiFallback(name, 100),
      typeflag: TYPEFLAG[entry.type],
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size,
      mtime,
      linkname: pax?.has('linkpath') ? asciiFallback(linkname, 100) : linkname,
      uname: pax?.has('uname') ? asciiFallback(uname, 32) : uname,
      gname: pax?.has('gname') ? asciiFallback(gname, 32) : gname,
      devmajor: entry.devmajor ?? 0,
      devminor: entry.devminor ?? 0,
    },
    block,
  );
  if (pax === undefined) return ustar;

  // Records in key order (as Go writes them), so the bytes do not depend on insertion order.
  const records = [...pax].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, value]) => paxRecord(key, value));
  const recordBytes = records.reduce((n, r) => n + r.byteLength, 0);
  const base = entry.path.slice(entry.path.lastIndexOf('/') + 1);
  const paxHeader = encodeUstar({
    name: asciiFallback(`PaxHeaders.0/${base}`, 100),
    typeflag: TYPEFLAG_PAX,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: recordBytes,
    mtime: 0,
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  });
  const out = new Uint8Array(BLOCK_SIZE + recordBytes + paddingFor(recordBytes) + BLOCK_SIZE);
  out.set(paxHeader, 0);
  let offset = BLOCK_SIZE;
  for (const record of records) {
    out.set(record, offset);
    offset += record.byteLength;
  }
  out.set(ustar, out.byteLength - BLOCK_SIZE);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The raw type of a header block, before PAX and GNU long-name records are applied. */
export type RawTypeflag =
  | LayerEntryType
  | 'pax'
  | 'pax-global'
  | 'gnu-long-name'
  | 'gnu-long-link'
  | 'gnu-volume'
  | 'gnu-dumpdir'
  | 'unsupported';

export interface RawHeader extends HeaderFields {
  readonly type: RawTypeflag;
}

function typeOf(flag: number, name: string): RawTypeflag {
  switch (flag) {
    case 0:
    case 0x30:
    case 0x37: // '7' contiguous file: a regular file everywhere that matters
      // Pre-POSIX archives mark directories only by the trailing slash.
      return name.endsWith('/') ? 'directory' : 'file';
    case 0x31:
      return 'hardlink';
    case 0x32:
      return 'symlink';
    case 0x33:
      return 'char-device';
    case 0x34:
      return 'block-device';
    case 0x35:
      return 'directory';
    case 0x36:
      return 'fifo';
    case 0x78:
      return 'pax';
    case 0x67:
      return 'pax-global';
    case 0x4c:
      return 'gnu-long-name';
    case 0x4b:
      return 'gnu-long-link';
    case 0x56:
      return 'gnu-volume';
    case 0x44:
      return 'gnu-dumpdir';
    default:
      return 'unsupported';
  }
}

function readCString(block: Uint8Array, offset: number, length: number, field: string, at: number): string {
  let end = offset;
  let ascii = true;
  while (end < offset + length && block[end] !== 0) {
    if (block[end]! > 0x7f) ascii = false;
    end++;
  }
  if (end === offset) return '';
  // Nearly every field is ASCII (names in PAX records are decoded elsewhere): skip the decoder.
  if (ascii) return latin1Slice.call(block, offset, end);
  return decodeUtf8(block.subarray(offset, end), field, at);
}

export function decodeUtf8(bytes: Uint8Array, field: string, at: number | undefined, entry?: string): string {
  try {
    return utf8.decode(bytes);
  } catch (err) {
    throw new InvalidArchiveError(`${field} is not valid UTF-8`, entry, at, { cause: err });
  }
}

/** Parses an octal (optionally space or NUL padded) or GNU base-256 numeric field. */
function readNumber(block: Uint8Array, offset: number, length: number, field: string, at: number): number {
  const first = block[offset]!;
  if (first & 0x80) {
    // Base-256: 0x80 marks a positive value, 0xff a negative one (two's complement).
    const negative = (first & 0x40) !== 0;
    let value = (negative ? ~first : first) & 0x3f;
    for (let i = 1; i < length; i++) {
      const byte = negative ? ~block[offset + i]! & 0xff : block[offset + i]!;
      value = value * 256 + byte;
      if (value > Number.MAX_SAFE_INTEGER) throw new InvalidArchiveError(`${field} field is out of range`, undefined, at);
    }
    return negative ? -(value + 1) : value;
  }
  let i = offset;
  const end = offset + length;
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = block[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw new InvalidArchiveError(`${field} field is not octal`, undefined, at);
    value = value * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) {
    if (block[i] !== 0x20 && block[i] !== 0) throw new InvalidArchiveError(`${field} field is not octal`, undefined, at);
  }
  return digits === 0 ? 0 : value;
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decodes one 512-byte header block; `at` is its offset in the stream, for error messages. */
export function decodeHeader(block: Uint8Array, at: number): RawHeader {
  const recorded = readNumber(block, 148, 8, 'checksum', at);
  const unsigned = checksum(block);
  if (recorded !== unsigned) {
    // Some historic writers summed signed bytes; accept that variant too, as GNU tar does.
    let signed = 0;
    for (let i = 0; i < BLOCK_SIZE; i++) signed += i >= 148 && i < 156 ? 0x20 : (block[i]! << 24) >> 24;
    if (recorded !== signed) throw new InvalidArchiveError('header checksum mismatch (corrupt data, or not a tar stream)', undefined, at);
  }
  // "ustar" (bytes, not a string: this runs for every entry of every layer read).
  const ustar = block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74 && block[260] === 0x61 && block[261] === 0x72;
  let name = readCString(block, 0, 100, 'name', at);
  // POSIX ustar ("ustar\0") has a prefix field; GNU ("ustar ") uses those bytes for other data.
  if (ustar && block[262] === 0 && block[345] !== 0) name = `${readCString(block, 345, 155, 'prefix', at)}/${name}`;
  const typeflag = block[156]!;
  return {
    name,
    type: typeOf(typeflag, name),
    typeflag,
    mode: readNumber(block, 100, 8, 'mode', at) & 0o7777,
    uid: readNumber(block, 108, 8, 'uid', at),
    gid: readNumber(block, 116, 8, 'gid', at),
    size: readNumber(block, 124, 12, 'size', at),
    mtime: readNumber(block, 136, 12, 'mtime', at),
    linkname: readCString(block, 157, 100, 'linkname', at),
    uname: ustar ? readCString(block, 265, 32, 'uname', at) : '',
    gname: ustar ? readCString(block, 297, 32, 'gname', at) : '',
    devmajor: ustar ? readNumber(block, 329, 8, 'devmajor', at) : 0,
    devminor: ustar ? readNumber(block, 337, 8, 'devminor', at) : 0,
  };
}

/** Parses PAX extended header records (`"%d %s=%s\n"`), keeping values as raw bytes. */
export function decodePaxRecords(data: Uint8Array, at: number): Map<string, Uint8Array> {
  const records = new Map<string, Uint8Array>();
  let pos = 0;
  while (pos < data.byteLength) {
    // Trailing NUL padding is tolerated (some writers pad the record area).
    if (data[pos] === 0) break;
    let space = pos;
    while (space < data.byteLength && data[space] !== 0x20) space++;
    const length = Number(String.fromCharCode(...data.subarray(pos, space)));
    if (!Number.isInteger(length) || length <= space - pos + 1 || pos + length > data.byteLength || data[pos + length - 1] !== 0x0a) {
      throw new InvalidArchiveError('malformed PAX record', undefined, at);
    }
    const record = data.subarray(space + 1, pos + length - 1);
    const eq = record.indexOf(0x3d);
    if (eq <= 0) throw new InvalidArchiveError('malformed PAX record (no key)', undefined, at);
    records.set(decodeUtf8(record.subarray(0, eq), 'PAX key', at), record.subarray(eq + 1));
    pos += length;
  }
  return records;
}

/** Parses a decimal PAX number (`size`, `uid`, `mtime` may carry a fraction). */
export function paxNumber(value: Uint8Array, key: string, at: number, allowFraction = false): number {
  const text = String.fromCharCode(...value);
  const pattern = allowFraction ? /^-?\d+(\.\d+)?$/ : /^\d+$/;
  const n = Number(text);
  if (!pattern.test(text) || !Number.isFinite(n) || Math.abs(n) > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArchiveError(`PAX ${key} is not a valid number`, undefined, at);
  }
  return n;
}
