import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import { parseServiceConfig, ServiceError, type ImageBuildUpdate, type ServiceConfig } from '../../src/service/index.js';
import { run, startRegistry, tempDir, type StartRegistryOptions, type TestRegistry } from '../harness/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../fixtures/make-busybox.js';

/**
 * Shared pieces of the service tests: a real registry holding the busybox base, bare git
 * repositories served over file:// (and smart HTTP with Basic auth), a service config pointing
 * at them, and stream collectors.
 */

export interface ServiceSuite {
  readonly registry: TestRegistry;
  /** `127.0.0.1:PORT/busybox:latest`. */
  readonly busybox: string;
  readonly busyboxDigest: string;
  readonly dir: string;
  readonly cacheDir: string;
  /** A config for this registry (`base-images`, `workspace-images`), with overrides. */
  config(stevedore?: Record<string, unknown>, extra?: Record<string, unknown>): ServiceConfig;
  stop(): Promise<void>;
}

export async function startServiceSuite(registryOptions: StartRegistryOptions = {}): Promise<ServiceSuite> {
  const dir = await tempDir('stevedore-service-suite-');
  let registry: TestRegistry | undefined;
  try {
    registry = await startRegistry(registryOptions);
    const image = await makeBusyboxImage({ dir: join(dir.path, 'busybox'), platform: { os: 'linux', architecture: 'amd64' } });
    const busybox = `${registry.host}/busybox:latest`;
    const credentials = registry.credentials;
    const pushed = await pushBusyboxImage(image, busybox, credentials === undefined ? {} : { credentials });
    const cacheDir = join(dir.path, 'cache');
    await mkdir(cacheDir);
    const host = registry.host;
    const reg = registry;
    let configs = 0;
    return {
      registry,
      busybox,
      busyboxDigest: pushed.digest,
      dir: dir.path,
      cacheDir,
      config: (stevedore = {}, extra = {}) =>
        parseServiceConfig({
          orchestrator: { baseImageRepository: `${host}/base-images`, workspaceImageRepository: `${host}/workspace-images` },
          ...extra,
          stevedore: { workDir: join(dir.path, `work-${++configs}`), cacheDir, concurrency: 2, ...stevedore },
        }).config,
      stop: async () => {
        await reg.stop();
        await dir.remove();
      },
    };
  } catch (err) {
    await registry?.stop();
    await dir.remove();
    throw err;
  }
}

export interface GitRepo {
  /** The bare repository's directory. */
  readonly bare: string;
  /** `file://` URL of the bare repository. */
  readonly url: string;
  /** Commits, oldest first. */
  readonly commits: string[];
  /** Adds a commit with these files on `branch` (default main) and pushes it. */
  commit(files: Record<string, string>, branch?: string): Promise<string>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Stevedore Test',
  GIT_AUTHOR_EMAIL: 'test@stevedore.invalid',
  GIT_COMMITTER_NAME: 'Stevedore Test',
  GIT_COMMITTER_EMAIL: 'test@stevedore.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

/** A bare repository (default branch `main`) with a first commit of `files`. */
export async function makeGitRepo(parent: string, name: string, files: Record<string, string>): Promise<GitRepo> {
  const bare = join(parent, `${name}.git`);
  const work = join(parent, `${name}-work`);
  const env = { ...process.env, ...GIT_ENV };
  const git = async (args: string[], cwd: string): Promise<string> => (await run('git', args, { cwd, env })).stdout.trim();
  await mkdir(work, { recursive: true });
  await git(['init', '--quiet', '--bare', '--initial-branch=main', bare], parent);
  await git(['init', '--quiet', '--initial-branch=main', work], parent);
  await git(['remote', 'add', 'origin', bare], work);
  const commits: string[] = [];
  const commit = async (changes: Record<string, string>, branch = 'main'): Promise<string> => {
    const current = await git(['rev-parse', '--abbrev-ref', 'HEAD'], work).catch(() => 'main');
    if (current !== branch) {
      const exists = await git(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`], work).then(() => true, () => false);
      await git(['checkout', '--quiet', ...(exists ? [] : ['-b']), branch], work);
    }
    for (const [path, content] of Object.entries(changes)) {
      await mkdir(join(work, path, '..'), { recursive: true });
      await writeFile(join(work, path), content);
    }
    await git(['add', '--all'], work);
    await git(['commit', '--quiet', '-m', `commit ${commits.length + 1}`], work);
    await git(['push', '--quiet', 'origin', branch], work);
    const sha = await git(['rev-parse', 'HEAD'], work);
    commits.push(sha);
    return sha;
  };
  await commit(files);
  return { bare, url: `file://${bare}`, commits, commit };
}

/** Reads a Build stream to its end. */
export async function collectUpdates(stream: AsyncIterable<ImageBuildUpdate>): Promise<ImageBuildUpdate[]> {
  const updates: ImageBuildUpdate[] = [];
  for await (const update of stream) updates.push(update);
  return updates;
}

export async function collectText(stream: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

/** The ServiceError a promise (or the first `next()` of a stream) rejects with. */
export async function serviceErrorOf(work: Promise<unknown> | AsyncIterable<unknown>): Promise<ServiceError> {
  try {
    if (Symbol.asyncIterator in (work as object)) {
      for await (const _ of work as AsyncIterable<unknown>) void _;
    } else {
      await work;
    }
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceError);
    return err as ServiceError;
  }
  throw new Error('expected a ServiceError, but it succeeded');
}

export interface TestHttpServer {
  readonly url: string;
  /** Requests seen, in order (method and path). */
  readonly requests: string[];
  stop(): Promise<void>;
}

/** A small HTTP server on 127.0.0.1 for the given handler. */
export async function startHttpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestHttpServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Git's smart HTTP protocol over `git http-backend` (CGI) with Basic auth, serving the bare
 * repositories under `root` at `/git/<name>.git`; `/ots` answers the one-time secret
 * `user:password` once.
 */
export async function startGitHttpServer(root: string, credentials: { username: string; password: string }): Promise<TestHttpServer> {
  const expected = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  let otsUsed = false;
  return startHttpServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/ots') {
      if (otsUsed) {
        res.writeHead(404).end();
        return;
      }
      otsUsed = true;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${credentials.username}:${credentials.password}`);
      return;
    }
    if (!url.pathname.startsWith('/git/')) {
      res.writeHead(404).end();
      return;
    }
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' }).end();
      return;
    }
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: url.pathname.slice('/git'.length),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: credentials.username,
        REMOTE_ADDR: '127.0.0.1',
        ...(req.headers['content-encoding'] === undefined ? {} : { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] }),
        ...(req.headers['git-protocol'] === undefined ? {} : { GIT_PROTOCOL: String(req.headers['git-protocol']) }),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.on('close', () => res.end());
  });
}
