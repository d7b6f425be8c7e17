import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { request } from 'undici';
import { AbortedError } from '../errors.js';
import { redactUrl } from '../registry/index.js';
import { ChecksumMismatchError, GitSourceError, RemoteSourceError } from './errors.js';

/**
 * The remote sources of ADD: a file over HTTP(S), and a git repository (through the git CLI).
 * Both land in a temporary directory of the build and are copied from there like local files.
 */

/** The file name BuildKit gives a downloaded URL: the last segment of its path, or `__unnamed__`. */
export function urlFileName(url: string): string {
  try {
    const path = new URL(url).pathname;
    const base = path.split('/').filter((p) => p !== '').at(-1);
    return base === undefined || base === '.' ? '__unnamed__' : decodeURIComponent(base);
  } catch {
    return '__unnamed__';
  }
}

const MAX_REDIRECTS = 10;
const CHECKSUM_ALGORITHMS: Readonly<Record<string, string>> = { sha256: 'sha256', sha384: 'sha384', sha512: 'sha512' };

export interface DownloadedFile {
  readonly path: string;
  readonly name: string;
  readonly size: number;
}

/**
 * Downloads `url` into `dir` under BuildKit's name for it, with mode 0600 and the modification
 * time of `Last-Modified` (when given). With `checksum` (`sha256:HEX`...) the content must match.
 */
export async function downloadFile(url: string, dir: string, checksum: string | undefined, signal?: AbortSignal): Promise<DownloadedFile> {
  let expected: { algorithm: string; hex: string } | undefined;
  if (checksum !== undefined) {
    const colon = checksum.indexOf(':');
    const algorithm = CHECKSUM_ALGORITHMS[checksum.slice(0, colon)];
    const hex = checksum.slice(colon + 1).toLowerCase();
    if (colon < 0 || algorithm === undefined || !/^[0-9a-f]+$/.test(hex)) {
      throw new RemoteSourceError(redactUrl(url), `invalid --checksum ${JSON.stringify(checksum)} (expected sha256:HEX, sha384:HEX or sha512:HEX)`);
    }
    expected = { algorithm, hex };
  }
  const name = urlFileName(url);
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    if (current.protocol !== 'http:' && current.protocol !== 'https:') throw new RemoteSourceError(redactUrl(url), `redirected to a ${current.protocol} URL`);
    let response;
    try {
      response = await request(current, { method: 'GET', headers: { 'user-agent': 'stevedore' }, ...(signal === undefined ? {} : { signal }) });
    } catch (err) {
      if (signal?.aborted) throw new AbortedError('download aborted', { cause: signal.reason });
      throw new RemoteSourceError(redactUrl(current.href), (err as Error).message, { cause: err });
    }
    const location = response.headers.location;
    if (response.statusCode >= 300 && response.statusCode < 400 && location !== undefined) {
      await response.body.dump();
      if (hop >= MAX_REDIRECTS) throw new RemoteSourceError(redactUrl(url), `more than ${MAX_REDIRECTS} redirects`);
      current = new URL(Array.isArray(location) ? location[0]! : location, current);
      continue;
    }
    if (response.statusCode !== 200) {
      await response.body.dump();
      throw new RemoteSourceError(redactUrl(current.href), `the server answered ${response.statusCode}`);
    }
    const hash = expected === undefined ? undefined : createHash(expected.algorithm);
    const hasher = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash?.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(response.body, hasher, createWriteStream(path, { mode: 0o600 }), ...(signal === undefined ? [] : [{ signal }]));
    } catch (err) {
      await rm(path, { force: true });
      if (signal?.aborted) throw new AbortedError('download aborted', { cause: signal.reason });
      throw new RemoteSourceError(redactUrl(current.href), (err as Error).message, { cause: err });
    }
    if (expected !== undefined && hash !== undefined) {
      const actual = hash.digest('hex');
      if (actual !== expected.hex) throw new ChecksumMismatchError(redactUrl(url), `${checksum!.slice(0, checksum!.indexOf(':'))}:${expected.hex}`, `${checksum!.slice(0, checksum!.indexOf(':'))}:${actual}`);
    }
    const modified = response.headers['last-modified'];
    const time = typeof modified === 'string' ? Date.parse(modified) : NaN;
    if (Number.isFinite(time)) await utimes(path, time / 1000, time / 1000);
    return { path, name, size: (await stat(path)).size };
  }
}

/** A git source: the repository, the ref to check out, and the subdirectory to copy. */
export interface GitReference {
  readonly remote: string;
  readonly ref?: string | undefined;
  readonly subdir?: string | undefined;
}

/** `URL#ref:subdir` (BuildKit's fragment form). */
export function parseGitSource(source: string): GitReference {
  const hash = source.indexOf('#');
  if (hash < 0) return { remote: source };
  const remote = source.slice(0, hash);
  const fragment = source.slice(hash + 1);
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? undefined : fragment.slice(colon + 1);
  return { remote, ...(ref === '' ? {} : { ref }), ...(subdir === undefined || subdir === '' ? {} : { subdir }) };
}

function git(args: readonly string[], cwd: string, signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      [...args],
      {
        cwd,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: 'true', LC_ALL: 'C' },
        ...(signal === undefined ? {} : { signal }),
      },
      (err, stdout, stderr) => {
        if (err === null) resolve(stdout);
        else reject(Object.assign(err, { stderr: String(stderr) }));
      },
    );
  });
}

/**
 * Checks a repository out into `dir` (shallow when the server allows it): the ref (a branch, a
 * tag or a commit; default the remote's HEAD), submodules included. Without `keepGitDir` the
 * `.git` directory is removed, as BuildKit does.
 *
 * `checksum` pins the commit (`ADD --checksum=COMMIT git-url`, BuildKit's form for git sources):
 * the checked-out commit's id must begin with it (at least 7 hex digits), else the ADD fails with
 * ChecksumMismatchError before any file is copied.
 */
export async function checkoutGit(source: GitReference, dir: string, keepGitDir: boolean, signal?: AbortSignal, checksum?: string): Promise<void> {
  const what = redactUrl(source.remote);
  const pinned = checksum?.toLowerCase();
  if (pinned !== undefined && !/^[0-9a-f]{7,64}$/.test(pinned)) {
    throw new GitSourceError(what, `invalid --checksum ${JSON.stringify(checksum)} for a git source (expected a commit id: 7 to 64 hex digits)`);
  }
  const fail = (step: string, err: unknown): never => {
    if (signal?.aborted) throw new AbortedError('git checkout aborted', { cause: signal.reason });
    const stderr = String((err as { stderr?: unknown }).stderr ?? (err as Error).message ?? err).trim();
    throw new GitSourceError(what, `${step} failed: ${stderr.split('\n').slice(-3).join(' ')}`, { cause: err });
  };
  await mkdir(dir, { recursive: true });
  await git(['init', '-q', '.'], dir, signal).catch((err) => fail('git init', err));
  await git(['remote', 'add', 'origin', source.remote], dir, signal).catch((err) => fail('git remote add', err));
  const ref = source.ref ?? 'HEAD';
  const shallow = await git(['fetch', '-q', '--depth=1', '--no-tags', 'origin', ref], dir, signal).then(
    () => undefined,
    (err: unknown) => ({ err }),
  );
  if (shallow === undefined) {
    await git(['checkout', '-q', '--detach', 'FETCH_HEAD'], dir, signal).catch((err) => fail('git checkout', err));
  } else {
    // Dumb HTTP servers and some refs (an abbreviated commit) cannot be fetched shallowly.
    if (signal?.aborted) fail('git fetch', shallow.err);
    await git(['fetch', '-q', '--tags', 'origin'], dir, signal).catch((err) => fail('git fetch', err));
    const resolved = await git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], dir, signal).catch(() =>
      git(['rev-parse', '--verify', '--quiet', `origin/${ref}^{commit}`], dir, signal).catch((err) => fail(`resolving ${ref}`, err)),
    );
    await git(['checkout', '-q', '--detach', resolved.trim()], dir, signal).catch((err) => fail('git checkout', err));
  }
  if (pinned !== undefined) {
    const commit = (await git(['rev-parse', 'HEAD'], dir, signal).catch((err) => fail('git rev-parse', err))).trim();
    if (!commit.startsWith(pinned)) throw new ChecksumMismatchError(what, pinned, commit);
  }
  await finishCheckout(dir, keepGitDir, signal, fail);
}

async function finishCheckout(dir: string, keepGitDir: boolean, signal: AbortSignal | undefined, fail: (step: string, err: unknown) => never): Promise<void> {
  const hasModules = await stat(join(dir, '.gitmodules')).then(
    () => true,
    () => false,
  );
  if (hasModules) await git(['submodule', 'update', '-q', '--init', '--recursive', '--depth=1'], dir, signal).catch((err) => fail('git submodule update', err));
  if (!keepGitDir) await rm(join(dir, '.git'), { recursive: true, force: true });
}
