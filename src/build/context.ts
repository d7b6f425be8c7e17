import type { BigIntStats } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { dockerignoreCandidates, dockerignoreMatcher, type DockerignoreMatcher } from '../dockerfile/index.js';
import type { SourceTree } from './source-tree.js';

/**
 * The build context as COPY and ADD see it: the directory minus what `.dockerignore` excludes,
 * with the walk rule of BuildKit's context transfer (an excluded directory is entered only when
 * an exception pattern starts inside it, and then kept only as the parent of what it includes).
 * Owners read as 0:0, as BuildKit resets them; symlinks that leave the context are refused.
 */
export class BuildContextTree implements SourceTree {
  readonly description = 'the build context';
  readonly escape = 'error' as const;
  readonly resetOwner = true;
  readonly root: string;
  readonly #matcher: DockerignoreMatcher | undefined;
  readonly #visible = new Map<string, Promise<boolean>>();
  /**
   * Stats started ahead of the walk, each taken once by its `lstat`: the walk visits entries one
   * after another, and stats in flight together make a warm rebuild's walk of a large context
   * bound by the thread pool rather than by one stat's latency. At most `STAT_AHEAD` at a time,
   * taken from the most recent listing first (the walk is depth-first).
   */
  readonly #prefetched = new Map<string, Promise<BigIntStats | undefined>>();
  /** Listings whose entries are still to be stat'ed ahead, the most recent last. */
  readonly #listings: { readonly dir: string; readonly names: readonly string[]; next: number }[] = [];

  constructor(root: string, matcher?: DockerignoreMatcher) {
    this.root = root;
    this.#matcher = matcher;
  }

  #abs(path: string): string {
    return path === '' ? this.root : join(this.root, path);
  }

  async lstat(path: string): Promise<BigIntStats | undefined> {
    if (!(await this.visible(path))) return undefined;
    const prefetched = this.#prefetched.get(path);
    if (prefetched !== undefined) {
      this.#prefetched.delete(path);
      this.#statAhead();
      return prefetched;
    }
    return lstatOrUndefined(this.#abs(path));
  }

  readlink(path: string): Promise<string> {
    return readlink(this.#abs(path));
  }

  async readdir(path: string): Promise<string[]> {
    const names = await readdir(this.#abs(path));
    let kept = names;
    if (this.#matcher !== undefined) {
      const keep = await Promise.all(names.map((name) => this.visible(path === '' ? name : `${path}/${name}`)));
      kept = names.filter((_, i) => keep[i]);
    }
    // A new directory gets at least half the window: stats left from listings the walk has
    // passed over (a wildcard's non-matches) or will come back to are dropped oldest first.
    for (const stale of this.#prefetched.keys()) {
      if (this.#prefetched.size <= STAT_AHEAD / 2) break;
      this.#prefetched.delete(stale);
    }
    this.#listings.push({ dir: path, names: kept, next: 0 });
    this.#statAhead();
    return kept;
  }

  #statAhead(): void {
    while (this.#prefetched.size < STAT_AHEAD) {
      const listing = this.#listings.at(-1);
      if (listing === undefined) return;
      if (listing.next >= listing.names.length) {
        this.#listings.pop();
        continue;
      }
      const name = listing.names[listing.next++]!;
      const child = listing.dir === '' ? name : `${listing.dir}/${name}`;
      if (this.#prefetched.has(child)) continue;
      const stat = lstatOrUndefined(this.#abs(child));
      stat.catch(() => undefined); // taken (and its error seen) by `lstat`, or never needed
      this.#prefetched.set(child, stat);
    }
  }

  /**
   * Where `path`'s bytes are, if it is part of the context. Not stat'ed again: every caller has
   * just stat'ed it in its walk (a second stat per file was half of a warm rebuild's walk), and a
   * file that vanishes before it is read fails there (`readFileExactly`), naming it.
   */
  async hostPath(path: string): Promise<string | undefined> {
    return (await this.visible(path)) ? this.#abs(path) : undefined;
  }

  /** Whether `path` is part of the context after `.dockerignore`. */
  visible(path: string): Promise<boolean> {
    if (path === '' || this.#matcher === undefined) return Promise.resolve(true);
    let known = this.#visible.get(path);
    if (known === undefined) {
      known = this.#computeVisible(path, this.#matcher);
      this.#visible.set(path, known);
    }
    return known;
  }

  async #computeVisible(path: string, matcher: DockerignoreMatcher): Promise<boolean> {
    const slash = path.lastIndexOf('/');
    if (slash >= 0 && !(await this.#directoryEntered(path.slice(0, slash), matcher))) return false;
    const st = await lstatOrUndefined(this.#abs(path));
    if (st === undefined) return false;
    const decision = matcher.decide(path, st.isDirectory());
    if (decision === 'include') return true;
    if (decision === 'exclude') return false;
    // An excluded directory an exception reaches into: kept only if something in it is included.
    for (const name of await readdir(this.#abs(path))) {
      if (await this.visible(`${path}/${name}`)) return true;
    }
    return false;
  }

  /** Whether the walk enters directory `dir` (and every directory above it). */
  async #directoryEntered(dir: string, matcher: DockerignoreMatcher): Promise<boolean> {
    const slash = dir.lastIndexOf('/');
    if (slash >= 0 && !(await this.#directoryEntered(dir.slice(0, slash), matcher))) return false;
    return matcher.decide(dir, true) !== 'exclude';
  }
}

/** How many stats run ahead of a walk of the context (bounded memory for huge directories). */
const STAT_AHEAD = 512;

async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

/**
 * Reads the ignore file of a build: `<Dockerfile>.dockerignore` next to the Dockerfile when the
 * Dockerfile is a file, else `<context>/.dockerignore`. Undefined when there is none.
 */
export async function loadDockerignore(context: string, dockerfilePath: string | undefined): Promise<DockerignoreMatcher | undefined> {
  const candidates = dockerfilePath === undefined ? dockerignoreCandidates('Dockerfile').filter((c) => c.relativeTo === 'context') : dockerignoreCandidates(dockerfilePath);
  for (const candidate of candidates) {
    const path = candidate.relativeTo === 'context' ? join(context, candidate.path) : isAbsolute(candidate.path) ? candidate.path : resolve(context, candidate.path);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    return dockerignoreMatcher(text);
  }
  return undefined;
}
