import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AbortedError, throwIfAborted } from '../../errors.js';
import { ServiceError } from '../errors.js';
import type { GitInitializerSpec } from '../types.js';
import { InitializerError, safeUrl, stripUrlCredentials, type InitializerContext } from './context.js';
import { workspacePath } from './paths.js';

/**
 * The git initializer with the `git` CLI, after content-service's semantics (SPEC-gitpod.md §2):
 * a shallow clone (`--depth=1`) unless `fullClone`; `targetMode` decides what is checked out.
 * Credentials never reach argv, the log or an error: git asks an askpass script that prints them
 * from its environment, and every secret is registered with the censor first. `custom_config`
 * goes in through `GIT_CONFIG_COUNT` for the same reason. Only ordinary transports are allowed
 * (`ext::` would run arbitrary commands).
 */

const ALLOWED_PROTOCOLS = 'file:git:http:https:ssh';
const MAX_STDERR = 64 * 1024;
const ASKPASS = `#!/bin/sh
case "$1" in
  [Uu]sername*) printf '%s\\n' "$STEVEDORE_GIT_USERNAME" ;;
  *) printf '%s\\n' "$STEVEDORE_GIT_PASSWORD" ;;
esac
`;

export async function gitInitializer(spec: GitInitializerSpec, root: string, ctx: InitializerContext): Promise<void> {
  validate(spec);
  const location = workspacePath(root, spec.checkoutLocation === '' ? '.' : spec.checkoutLocation, 'git checkout_location');
  await mkdir(location, { recursive: true });
  if ((await readdir(location)).length > 0) throw new InitializerError('git', `the checkout location ${JSON.stringify(spec.checkoutLocation)} is not empty`);

  const credentials = await credentialsOf(spec, ctx);
  const env = await gitEnvironment(spec, credentials, ctx.scratchDir);
  const git = (args: readonly string[], cwd: string): Promise<string> => runGit(args, cwd, env, ctx);
  const remote = spec.remoteUri;
  const depth = spec.fullClone ? [] : ['--depth=1'];
  const target = spec.cloneTarget;
  ctx.log(`git: cloning ${safeUrl(remote)}${target === '' ? '' : ` (${spec.targetMode} ${target})`}`);

  switch (spec.targetMode) {
    case 'REMOTE_HEAD':
      await git(['clone', '--quiet', ...depth, '--', remote, location], root);
      break;
    case 'REMOTE_BRANCH': {
      // content-service falls back to the default branch when the branch does not exist.
      const exists = target !== '' && (await git(['ls-remote', '--heads', '--', remote, `refs/heads/${target}`], root)).trim() !== '';
      if (!exists && target !== '') ctx.log(`git: branch ${target} does not exist on the remote; using the default branch`);
      await git(['clone', '--quiet', ...depth, ...(exists ? ['--branch', target] : []), '--', remote, location], root);
      break;
    }
    case 'REMOTE_COMMIT': {
      if (target === '') throw new ServiceError('INVALID_ARGUMENT', 'git initializer: REMOTE_COMMIT needs the commit in clone_taget');
      if (spec.fullClone) {
        await git(['clone', '--quiet', '--no-checkout', '--', remote, location], root);
      } else {
        // As content-service: the commit with 20 commits of history.
        await git(['clone', '--quiet', '--depth=1', '--no-checkout', '--', remote, location], root);
        // By URL, not by remote name: custom_config may rename the remote (clone.defaultRemoteName).
        await git(['fetch', '--quiet', '--depth=20', '--', remote, target], location);
      }
      await git(['-c', 'advice.detachedHead=false', 'checkout', '--quiet', spec.fullClone ? target : 'FETCH_HEAD'], location);
      break;
    }
    case 'LOCAL_BRANCH':
      await git(['clone', '--quiet', ...depth, '--', remote, location], root);
      if (target !== '') await git(['checkout', '--quiet', '-b', target], location);
      break;
  }
  if (spec.upstreamRemoteUri !== '') await git(['remote', 'add', 'upstream', spec.upstreamRemoteUri], location);
  const head = (await git(['rev-parse', 'HEAD'], location)).trim();
  ctx.log(`git: checked out ${head}`);
}

function validate(spec: GitInitializerSpec): void {
  if (spec.remoteUri === '') throw new ServiceError('INVALID_ARGUMENT', 'git initializer: remote_uri is empty');
  for (const [name, value] of [
    ['remote_uri', spec.remoteUri],
    ['upstream_Remote_uri', spec.upstreamRemoteUri],
    ['clone_taget', spec.cloneTarget],
  ] as const) {
    // A leading dash would read as an option; control characters have no place in a URL or a ref.
    if (value.startsWith('-') || /[\0-\x1f\x7f]/.test(value)) throw new ServiceError('INVALID_ARGUMENT', `git initializer: invalid ${name}`);
  }
  if (/\s/.test(spec.cloneTarget)) throw new ServiceError('INVALID_ARGUMENT', 'git initializer: clone_taget contains whitespace');
  for (const key of Object.keys(spec.config?.customConfig ?? {})) {
    // `section[.subsection].name`, as git config keys are.
    if (!/^[A-Za-z][A-Za-z0-9-]*(?:\.[^\0\n]+)?\.[A-Za-z][A-Za-z0-9-]*$/.test(key)) {
      throw new ServiceError('INVALID_ARGUMENT', `git initializer: invalid custom_config key ${JSON.stringify(key)}`);
    }
  }
}

interface GitCredentials {
  readonly username: string;
  readonly password: string;
}

async function credentialsOf(spec: GitInitializerSpec, ctx: InitializerContext): Promise<GitCredentials | undefined> {
  const config = spec.config;
  if (config === undefined || config.authentication === 'NO_AUTH') return undefined;
  if (config.authentication === 'BASIC_AUTH') {
    ctx.onSecret(config.authPassword);
    return { username: config.authUser, password: config.authPassword };
  }
  // BASIC_AUTH_OTS: a one-time secret URL answering `user:password`.
  if (config.authOts === '') throw new ServiceError('INVALID_ARGUMENT', 'git initializer: BASIC_AUTH_OTS without auth_ots');
  ctx.onSecret(config.authOts);
  let text: string;
  try {
    const response = await fetch(config.authOts, { signal: requestSignal(ctx) });
    text = await response.text();
    if (!response.ok) throw new InitializerError('git', `cannot fetch the one-time secret from ${safeUrl(config.authOts)}: HTTP ${response.status}`);
  } catch (err) {
    if (err instanceof InitializerError) throw err;
    throwIfAborted(ctx.signal);
    throw new InitializerError('git', `cannot fetch the one-time secret from ${safeUrl(config.authOts)}: ${(err as Error).name}`, { cause: err });
  }
  const secret = text.trim();
  ctx.onSecret(secret);
  const colon = secret.indexOf(':');
  if (colon < 0) throw new InitializerError('git', 'the one-time secret is not "user:password"');
  const password = secret.slice(colon + 1);
  ctx.onSecret(password);
  return { username: secret.slice(0, colon), password };
}

function requestSignal(ctx: InitializerContext): AbortSignal {
  const timeout = AbortSignal.timeout(ctx.requestTimeoutMs ?? 30_000);
  return ctx.signal === undefined ? timeout : AbortSignal.any([ctx.signal, timeout]);
}

async function gitEnvironment(spec: GitInitializerSpec, credentials: GitCredentials | undefined, scratchDir: string): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: scratchDir,
    LANG: 'C',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ALLOW_PROTOCOL: ALLOWED_PROTOCOLS,
    // No interactive ssh prompts either.
    GIT_SSH_COMMAND: 'ssh -o BatchMode=yes',
  };
  const entries = Object.entries(spec.config?.customConfig ?? {});
  if (credentials !== undefined) {
    const askpass = join(scratchDir, 'git-askpass.sh');
    await writeFile(askpass, ASKPASS, { mode: 0o700 });
    env.GIT_ASKPASS = askpass;
    env.STEVEDORE_GIT_USERNAME = credentials.username;
    env.STEVEDORE_GIT_PASSWORD = credentials.password;
  }
  if (entries.length > 0) {
    env.GIT_CONFIG_COUNT = String(entries.length);
    entries.forEach(([key, value], i) => {
      env[`GIT_CONFIG_KEY_${i}`] = key;
      env[`GIT_CONFIG_VALUE_${i}`] = value;
    });
  }
  return env;
}

/** Runs git; resolves with stdout, rejects with an `InitializerError` quoting its (credential-free) stderr. */
function runGit(args: readonly string[], cwd: string, env: NodeJS.ProcessEnv, ctx: InitializerContext): Promise<string> {
  throwIfAborted(ctx.signal);
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], ...(ctx.signal === undefined ? {} : { signal: ctx.signal }) });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (out.length < 1024) out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < MAX_STDERR) stderr += chunk.toString('utf8');
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError' || ctx.signal?.aborted) reject(new AbortedError('git was stopped: the build was cancelled', { cause: err }));
      else reject(new InitializerError('git', err.code === 'ENOENT' ? 'git is not installed' : `cannot run git (${err.code ?? err.message})`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (ctx.signal?.aborted) {
        reject(new AbortedError('git was stopped: the build was cancelled'));
        return;
      }
      if (code === 0) {
        resolve(Buffer.concat(out).toString('utf8'));
        return;
      }
      const detail = stripUrlCredentials(stderr.trim().split('\n').slice(-5).join(' | '));
      reject(new InitializerError('git', `git ${args.find((a) => !a.startsWith('-') && !a.includes('=')) ?? ''} failed (${signal ?? `exit code ${code}`})${detail === '' ? '' : `: ${detail}`}`));
    });
  });
}
