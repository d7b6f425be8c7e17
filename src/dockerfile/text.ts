// Go's notions of "space", "letter", "printable" and `strconv.Quote`, which BuildKit's parser
// and shell lexer rely on. Using JavaScript's own (`\s`, `trim()`) would differ on characters
// such as U+0085 or U+FEFF, and then a Dockerfile would parse differently here than in BuildKit.

/** Go's `unicode.IsSpace`. */
export function isSpace(cp: number): boolean {
  if (cp <= 0xff) {
    return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || cp === 0x85 || cp === 0xa0;
  }
  return (
    cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f || cp === 0x3000
  );
}

/** Go's `strings.TrimLeftFunc(s, unicode.IsSpace)`. */
export function trimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i)!;
    if (!isSpace(cp)) break;
    i += cp > 0xffff ? 2 : 1;
  }
  return i === 0 ? s : s.slice(i);
}

/** Go's `strings.TrimRightFunc(s, unicode.IsSpace)`. None of Go's spaces is astral. */
export function trimRightSpace(s: string): string {
  let j = s.length;
  while (j > 0 && isSpace(s.charCodeAt(j - 1))) j--;
  return j === s.length ? s : s.slice(0, j);
}

/** Go's `strings.TrimSpace`. */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;
const PRINTABLE = /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u;

/** Go's `unicode.IsLetter`. */
export function isLetter(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
  return LETTER.test(String.fromCodePoint(cp));
}

/** Go's `unicode.IsDigit`. */
export function isDigit(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x30 && cp <= 0x39;
  return DIGIT.test(String.fromCodePoint(cp));
}

const HEX = '0123456789abcdef';

function hex(n: number, width: number): string {
  let out = '';
  for (let i = width - 1; i >= 0; i--) out += HEX[(n >> (i * 4)) & 0xf];
  return out;
}

/**
 * Go's `strconv.Quote`: a double-quoted string with Go escapes, printable Unicode kept as is.
 * A lone surrogate (which UTF-8 input cannot produce) prints as U+FFFD, as Go would see it.
 */
export function goQuote(s: string): string {
  let out = '"';
  let plainStart = 0;
  let i = 0;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    // Fast path: printable ASCII other than the two that need escaping.
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) {
      i++;
      continue;
    }
    out += s.slice(plainStart, i);
    let cp = s.codePointAt(i)!;
    const width = cp > 0xffff ? 2 : 1;
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    out += quoteRune(cp);
    i += width;
    plainStart = i;
  }
  return `${out}${s.slice(plainStart)}"`;
}

function quoteRune(cp: number): string {
  switch (cp) {
    case 0x22:
      return '\\"';
    case 0x5c:
      return '\\\\';
    case 0x07:
      return '\\a';
    case 0x08:
      return '\\b';
    case 0x0c:
      return '\\f';
    case 0x0a:
      return '\\n';
    case 0x0d:
      return '\\r';
    case 0x09:
      return '\\t';
    case 0x0b:
      return '\\v';
  }
  if (cp < 0x20 || cp === 0x7f) return `\\x${hex(cp, 2)}`;
  if (cp === 0x20 || PRINTABLE.test(String.fromCodePoint(cp))) return String.fromCodePoint(cp);
  return cp > 0xffff ? `\\U${hex(cp, 8)}` : `\\u${hex(cp, 4)}`;
}
