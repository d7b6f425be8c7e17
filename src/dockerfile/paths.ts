/** Go's `path.Clean`. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  if (isClean(p)) return p;
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** Whether `p` is already what Clean returns: no empty, `.` or `..` segment, no trailing slash. */
function isClean(p: string): boolean {
  if (p.length > 1 && p.endsWith('/')) return false;
  let segmentStart = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i < p.length && p.charCodeAt(i) !== 0x2f) continue;
    const len = i - segmentStart;
    // An empty segment is only fine as the root of an absolute path.
    if (len === 0 && !(i === 0 && p.length > 0)) return p === '/';
    if (len === 1 && p.charCodeAt(segmentStart) === 0x2e) return false;
    if (len === 2 && p.charCodeAt(segmentStart) === 0x2e && p.charCodeAt(segmentStart + 1) === 0x2e) return false;
    segmentStart = i + 1;
  }
  return true;
}

/** Escapes a literal character outside a character class (regexp `u` mode allows only syntax characters). */
function escapeRegExp(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

/** Escapes a literal character inside a character class. */
function escapeClass(ch: string): string {
  return /[\\^\]\[-]/.test(ch) ? `\\${ch}` : ch;
}

/**
 * Go's `filepath.Match` pattern as an anchored regexp over `/`-separated names, or why Go calls
 * it a bad pattern (unclosed `[`, a reversed range, a trailing backslash). Shared by COPY's wildcards
 * (where BuildKit ignores a bad pattern) and .dockerignore (where it is an error).
 */
export function goPatternRegExp(pattern: string): { readonly regexp: RegExp } | { readonly problem: string } {
  const chars = Array.from(pattern);
  let re = '^';
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') {
      re += '[^/]*';
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      i++;
      if (i >= chars.length) return { problem: 'trailing backslash' };
      re += escapeRegExp(chars[i]!);
    } else if (ch === '[') {
      i++;
      let cls = '[';
      if (chars[i] === '^') {
        cls += '^';
        i++;
      }
      let count = 0;
      for (;;) {
        if (i >= chars.length) return { problem: 'unclosed "["' };
        if (chars[i] === ']' && count > 0) break;
        let lo = chars[i]!;
        if (lo === '\\') {
          i++;
          if (i >= chars.length) return { problem: 'trailing backslash' };
          lo = chars[i]!;
        }
        i++;
        if (chars[i] === '-' && chars[i + 1] !== undefined && chars[i + 1] !== ']') {
          i++;
          let hi = chars[i]!;
          if (hi === '\\') {
            i++;
            if (i >= chars.length) return { problem: 'trailing backslash' };
            hi = chars[i]!;
          }
          if (hi < lo) return { problem: `bad range ${lo}-${hi}` };
          cls += `${escapeClass(lo)}-${escapeClass(hi)}`;
          i++;
        } else {
          cls += escapeClass(lo);
        }
        count++;
      }
      re += `${cls}]`;
    } else {
      re += escapeRegExp(ch);
    }
  }
  try {
    return { regexp: new RegExp(`${re}$`, 'u') };
  } catch (err) {
    return { problem: (err as Error).message };
  }
}

