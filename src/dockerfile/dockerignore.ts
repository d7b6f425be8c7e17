import { StevedoreError } from '../errors.js';
import { cleanPath, goPatternRegExp } from './paths.js';

/**
 * `.dockerignore` with Docker's semantics: the file format of moby's `ignorefile.ReadAll`, the
 * matching of `moby/patternmatcher` (`MatchesOrParentMatches`: a path is excluded when it or
 * one of its parent directories matches, later patterns win, `!` re-includes), and the walk
 * decision of BuildKit's context transfer (fsutil), which skips an excluded directory unless
 * an exception pattern literally starts inside it.
 *
 * Written rather than taken from `@balena/dockerignore`: that library filters one path at a
 * time and cannot express the walk rule, under which `docs` + `!**\/*.md` leaves out
 * `docs/a.md` (no exception starts with `docs/`, so the directory is never entered) although
 * the path-by-path answer would keep it.
 */

/** A `.dockerignore` pattern that is not valid (`[a-`, a trailing `\`, a lone `!`). */
export class DockerignoreError extends StevedoreError {
  override name = 'DockerignoreError';
  constructor(
    readonly pattern: string,
    reason: string,
  ) {
    super('DOCKERIGNORE_INVALID_PATTERN', `invalid .dockerignore pattern ${JSON.stringify(pattern)}: ${reason}`);
  }
}

/** Where to look for the ignore file, in order: the first that exists is used, alone. */
export interface IgnoreFileCandidate {
  /** The path to try. */
  readonly path: string;
  /** `dockerfile`: `path` is the Dockerfile's own path plus `.dockerignore`; `context`: relative to the context root. */
  readonly relativeTo: 'dockerfile' | 'context';
}

/**
 * The ignore files for a build whose Dockerfile is at `dockerfilePath` (as given by the user):
 * `<Dockerfile>.dockerignore` next to it takes precedence over the context's `.dockerignore`.
 */
export function dockerignoreCandidates(dockerfilePath: string): readonly IgnoreFileCandidate[] {
  return [
    { path: `${dockerfilePath}.dockerignore`, relativeTo: 'dockerfile' },
    { path: '.dockerignore', relativeTo: 'context' },
  ];
}

/** Reads a `.dockerignore` file into patterns (comments and blank lines dropped, paths cleaned). */
export function parseDockerignore(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (i === 0 && line.charCodeAt(0) === 0xfeff) line = line.slice(1);
    // A comment is a line starting with "#" before any trimming.
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  }
  return patterns;
}

interface CompiledPattern {
  /** The pattern without `!`, cleaned. */
  readonly text: string;
  readonly exclusion: boolean;
  readonly regexp: RegExp;
}

/** What a walker of the build context does with an entry. */
export type ContextDecision = 'include' | 'exclude' | 'descend';

export class DockerignoreMatcher {
  private readonly patterns: readonly CompiledPattern[];
  private readonly hasExclusions: boolean;

  /** Compiles patterns (as `parseDockerignore` returns them); throws `DockerignoreError`. */
  constructor(patterns: readonly string[]) {
    const compiled: CompiledPattern[] = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new DockerignoreError(raw, 'illegal exclusion pattern: "!"');
        exclusion = true;
        p = p.slice(1);
      }
      validateGlob(raw, p);
      compiled.push({ text: p, exclusion, regexp: compile(p) });
    }
    this.patterns = compiled;
    this.hasExclusions = compiled.some((p) => p.exclusion);
  }

  /** Whether `path` (relative to the context, `/`-separated) is excluded. */
  matches(path: string): boolean {
    const file = normalize(path);
    const slash = file.lastIndexOf('/');
    const parents = slash < 0 ? [] : file.slice(0, slash).split('/');
    let matched = false;
    for (const pattern of this.patterns) {
      // Only an exclusion can change an excluded path, and only an inclusion an included one.
      if (pattern.exclusion !== matched) continue;
      let match = pattern.regexp.test(file);
      if (!match) {
        for (let i = 1; i <= parents.length && !match; i++) match = pattern.regexp.test(parents.slice(0, i).join('/'));
      }
      if (match) matched = !pattern.exclusion;
    }
    return matched;
  }

  /**
   * The walk decision for an entry: `include`; `exclude` (for a directory: skip its whole
   * subtree); or `descend`, for an excluded directory that an exception pattern starts inside:
   * walk it, and keep the directory only as the parent of what ends up included.
   */
  decide(path: string, isDirectory: boolean): ContextDecision {
    if (!this.matches(path)) return 'include';
    if (!isDirectory || !this.hasExclusions) return 'exclude';
    const dirSlash = `${normalize(path)}/`;
    return this.patterns.some((p) => p.exclusion && `${p.text}/`.startsWith(dirSlash)) ? 'descend' : 'exclude';
  }
}

/** A matcher for the text of a `.dockerignore` file. */
export function dockerignoreMatcher(text: string): DockerignoreMatcher {
  return new DockerignoreMatcher(parseDockerignore(text));
}

function normalize(path: string): string {
  const cleaned = cleanPath(path.replace(/\\/g, '/'));
  return cleaned.startsWith('/') ? cleaned.slice(1) : cleaned;
}

const REGEX_ESCAPE = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/** patternmatcher's glob → regexp: `*` and `?` stay within a path segment, `**` crosses them. */
function compile(pattern: string): RegExp {
  let re = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        // `**/` is `**`: it matches any number of directories, none included.
        if (chars[i + 1] === '/') i++;
        re += i + 1 >= chars.length ? '[^\\n]*' : '([^\\n]*/)?';
      } else {
        re += '[^/]*';
      }
    } else if (ch === '?') {
      re += '[^/]';
    } else if (REGEX_ESCAPE.has(ch)) {
      re += `\\${ch}`;
    } else if (ch === '\\') {
      // Escapes the next character, which is then literal.
      const next = chars[++i];
      if (next !== undefined) re += /[A-Za-z0-9]/.test(next) ? next : `\\${next}`;
    } else if (ch === '^') {
      // Inside a character class it negates; elsewhere Go's regexp would read an anchor.
      re += chars[i - 1] === '[' ? '^' : '(?!)';
    } else {
      re += ch;
    }
  }
  return new RegExp(`${re}$`);
}

/** Rejects what Go's `filepath.Match` calls a bad pattern: unclosed `[`, bad ranges, a trailing backslash. */
function validateGlob(raw: string, pattern: string): void {
  const compiled = goPatternRegExp(pattern);
  if ('problem' in compiled) throw new DockerignoreError(raw, `syntax error in pattern (${compiled.problem})`);
}
