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
