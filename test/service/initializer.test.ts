import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InitializerError, materializeWorkspace, ServiceError, type GitInitializerSpec, type InitializerContext } from '../../src/service/index.js';
import { run, tempDir } from '../harness/index.js';
import { makeGitRepo, startGitHttpServer, startHttpServer, type GitRepo, type TestHttpServer } from './helpers.js';

// The build-context initializers (decision 1), against real git repositories (file:// and smart
// HTTP with Basic auth through `git http-backend`) and a real HTTP server for downloads.

let dir: Awaited<ReturnType<typeof tempDir>>;
let repo: GitRepo;
let gitHttp: TestHttpServer;
let files: TestHttpServer;
const gitCredentials = { username: 'builder', password: 'git-pw-Zq81x' };
let workspaces = 0;

beforeAll(async () => {
  dir = await tempDir('stevedore-initializer-');
  repo = await makeGitRepo(dir.path, 'repo', { 'Dockerfile': 'FROM scratch\n', 'version.txt': 'one\n' });
  await repo.commit({ 'version.txt': 'two\n' });
  await repo.commit({ 'version.txt': 'feature\n' }, 'feature');
  gitHttp = await startGitHttpServer(dir.path, gitCredentials);
  files = await startHttpServer((req, res) => {
    if (req.url === '/hello.txt') res.writeHead(200).end('hello\n');
    else res.writeHead(404).end();
  });
});

afterAll(async () => {
  await gitHttp?.stop();
  await files?.stop();
  await dir?.remove();
});

interface Materialized {
  readonly root: string;
  readonly lines: string[];
  readonly secrets: string[];
}

async function materialize(spec: Parameters<typeof materializeWorkspace>[0]): Promise<Materialized> {
  const root = join(dir.path, `ws-${++workspaces}`);
  const scratch = join(dir.path, `scratch-${workspaces}`);
  await mkdir(root);
  await mkdir(scratch, { mode: 0o700 });
  const lines: string[] = [];
  const secrets: string[] = [];
  const ctx: InitializerContext = { scratchDir: scratch, log: (line) => lines.push(line), onSecret: (s) => secrets.push(s) };
  await materializeWorkspace(spec, root, ctx);
  return { root, lines, secrets };
}

async function failure(spec: Parameters<typeof materializeWorkspace>[0]): Promise<Error> {
  try {
    await materialize(spec);
  } catch (err) {
    return err as Error;
  }
  throw new Error('the initializer succeeded');
}

function gitSpec(overrides: Partial<GitInitializerSpec> = {}): GitInitializerSpec {
  return { kind: 'git', remoteUri: repo.url, upstreamRemoteUri: '', targetMode: 'REMOTE_HEAD', cloneTarget: '', checkoutLocation: '.', fullClone: false, ...overrides };
}

const git = async (cwd: string, ...args: string[]): Promise<string> => (await run('git', args, { cwd })).stdout.trim();

describe('git initializer', () => {
  it('REMOTE_HEAD: a shallow clone of the default branch', async () => {
    const { root } = await materialize(gitSpec());
    expect(await readFile(join(root, 'version.txt'), 'utf8')).toBe('two\n');
    expect(await git(root, 'rev-list', '--count', 'HEAD')).toBe('1');
  });

  it('REMOTE_COMMIT: a detached checkout of the commit', async () => {
    const { root } = await materialize(gitSpec({ targetMode: 'REMOTE_COMMIT', cloneTarget: repo.commits[0]! }));
    expect(await readFile(join(root, 'version.txt'), 'utf8')).toBe('one\n');
    expect(await git(root, 'rev-parse', 'HEAD')).toBe(repo.commits[0]);
  });

  it('REMOTE_COMMIT with a full clone keeps the whole history', async () => {
    const { root } = await materialize(gitSpec({ targetMode: 'REMOTE_COMMIT', cloneTarget: repo.commits[1]!, fullClone: true }));
    expect(await git(root, 'rev-parse', 'HEAD')).toBe(repo.commits[1]);
    expect(await git(root, 'rev-list', '--count', 'HEAD')).toBe('2');
  });

  it('REMOTE_BRANCH: the branch, checked out as itself; a missing branch falls back to the default', async () => {
    const { root } = await materialize(gitSpec({ targetMode: 'REMOTE_BRANCH', cloneTarget: 'feature' }));
    expect(await readFile(join(root, 'version.txt'), 'utf8')).toBe('feature\n');
    expect(await git(root, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('feature');
    const fallback = await materialize(gitSpec({ targetMode: 'REMOTE_BRANCH', cloneTarget: 'no-such-branch' }));
    expect(await readFile(join(fallback.root, 'version.txt'), 'utf8')).toBe('two\n');
    expect(fallback.lines.join('\n')).toContain('does not exist on the remote');
  });

  it('LOCAL_BRANCH: a new local branch from the remote head', async () => {
    const { root } = await materialize(gitSpec({ targetMode: 'LOCAL_BRANCH', cloneTarget: 'mine' }));
    expect(await git(root, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('mine');
    expect(await git(root, 'rev-parse', 'HEAD')).toBe(repo.commits[1]);
  });

  it('honours checkout_location, upstream_Remote_uri and custom_config', async () => {
    const { root } = await materialize(
      gitSpec({
        checkoutLocation: '/workspace/sub/dir',
        upstreamRemoteUri: 'https://example.com/upstream.git',
        config: { customConfig: { 'clone.defaultRemoteName': 'source' }, authentication: 'NO_AUTH', authUser: '', authPassword: '', authOts: '' },
      }),
    );
    const checkout = join(root, 'sub', 'dir');
    expect(await readFile(join(checkout, 'version.txt'), 'utf8')).toBe('two\n');
    expect((await git(checkout, 'remote')).split('\n').sort()).toEqual(['source', 'upstream']);
  });

  it('BASIC_AUTH over HTTP: the password reaches git, never its argv or an error', async () => {
    const spec = gitSpec({
      remoteUri: `${gitHttp.url}/git/repo.git`,
      config: { customConfig: {}, authentication: 'BASIC_AUTH', authUser: gitCredentials.username, authPassword: gitCredentials.password, authOts: '' },
    });
    const { root, secrets } = await materialize(spec);
    expect(await readFile(join(root, 'version.txt'), 'utf8')).toBe('two\n');
    expect(secrets).toContain(gitCredentials.password);
    // Nothing about the credentials is left in the checkout's git config.
    expect(await readFile(join(root, '.git', 'config'), 'utf8')).not.toContain(gitCredentials.password);

    const wrong = await failure({ ...spec, config: { ...spec.config!, authPassword: 'wrong-pw-123' } });
    expect(wrong).toBeInstanceOf(InitializerError);
    expect(wrong.message).toMatch(/git clone failed/);
    expect(wrong.message).not.toContain('wrong-pw-123');
  });

  it('BASIC_AUTH_OTS: the credentials come from the one-time secret URL', async () => {
    const { root, secrets } = await materialize(
      gitSpec({
        remoteUri: `${gitHttp.url}/git/repo.git`,
        config: { customConfig: {}, authentication: 'BASIC_AUTH_OTS', authUser: '', authPassword: '', authOts: `${gitHttp.url}/ots` },
      }),
    );
    expect(await readFile(join(root, 'version.txt'), 'utf8')).toBe('two\n');
    expect(secrets).toContain(gitCredentials.password);
  });

  it('a failing clone names the problem without the remote URL credentials', async () => {
    const err = await failure(gitSpec({ remoteUri: `http://user:url-secret-42@127.0.0.1:1/nothing.git` }));
    expect(err).toBeInstanceOf(InitializerError);
    expect(err.message).not.toContain('url-secret-42');
  });

  it('refuses options disguised as arguments and paths that leave the workspace', async () => {
    expect(await failure(gitSpec({ remoteUri: '--upload-pack=touch /tmp/pwned' }))).toBeInstanceOf(ServiceError);
    expect(await failure(gitSpec({ targetMode: 'LOCAL_BRANCH', cloneTarget: '-b' }))).toBeInstanceOf(ServiceError);
    const escape = await failure(gitSpec({ checkoutLocation: '../../etc' }));
    expect(escape).toBeInstanceOf(ServiceError);
    expect((escape as ServiceError).status).toBe('INVALID_ARGUMENT');
  });

  it('refuses the ext:: transport', async () => {
    const err = await failure(gitSpec({ remoteUri: 'ext::sh -c touch% /tmp/stevedore-ext-pwned' }));
    expect(err).toBeInstanceOf(InitializerError);
  });
});

describe('download, composite and unsupported initializers', () => {
  const digest = `sha256:${createHash('sha256').update('hello\n').digest('hex')}`;

  it('downloads files, verified against their digests, into target_location', async () => {
    const { root } = await materialize({ kind: 'download', targetLocation: '/workspace/files', files: [{ url: `${files.url}/hello.txt`, filePath: 'a/b/hello.txt', digest }] });
    expect(await readFile(join(root, 'files', 'a', 'b', 'hello.txt'), 'utf8')).toBe('hello\n');
  });

  it('a digest mismatch fails and leaves nothing behind', async () => {
    const root = join(dir.path, 'mismatch');
    await mkdir(root);
    const scratch = join(dir.path, 'mismatch-scratch');
    await mkdir(scratch);
    const err = await materializeWorkspace(
      { kind: 'download', targetLocation: '.', files: [{ url: `${files.url}/hello.txt`, filePath: 'hello.txt', digest: `sha256:${'0'.repeat(64)}` }] },
      root,
      { scratchDir: scratch, log: () => undefined, onSecret: () => undefined },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InitializerError);
    expect((err as Error).message).toContain('digest mismatch');
    expect(await readdir(root)).toEqual([]);
  });

  it('a missing file names the HTTP status', async () => {
    const err = await failure({ kind: 'download', targetLocation: '.', files: [{ url: `${files.url}/missing?token=abc`, filePath: 'x', digest }] });
    expect(err.message).toContain('HTTP 404');
    expect(err.message).not.toContain('token=abc');
  });

  it('composite runs its initializers in order', async () => {
    const { root } = await materialize({
      kind: 'composite',
      initializers: [gitSpec({ checkoutLocation: 'src' }), { kind: 'empty' }, { kind: 'download', targetLocation: 'src', files: [{ url: `${files.url}/hello.txt`, filePath: 'hello.txt', digest }] }],
    });
    expect((await readdir(join(root, 'src'))).sort()).toEqual(['.git', 'Dockerfile', 'hello.txt', 'version.txt']);
  });

  it.each(['snapshot', 'prebuild', 'backup'] as const)('%s → INVALID_ARGUMENT naming the kind', async (kind) => {
    const err = await failure({ kind });
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as ServiceError).status).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain(kind);
  });
});
