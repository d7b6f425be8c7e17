import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { StevedoreError } from '../errors.js';
import { decodeDockerAuth, encodeDockerAuth, type Credential, type CredentialProvider, type PasswordCredential } from './credentials.js';
import { configKeyHost, DOCKER_HUB_CONFIG_KEY, dockerConfigKey, isDockerHub } from './hosts.js';

/**
 * Docker's `config.json`: credentials in `auths` (base64 `auth`, or `username`/`password`,
 * `identitytoken`, `registrytoken`), or in an external credential helper named by `credHelpers`
 * (per host) or `credsStore` (default). Other keys belong to other tools and are preserved.
 */
export interface DockerAuthEntry {
  readonly auth?: string;
  readonly username?: string;
  readonly password?: string;
  readonly identitytoken?: string;
  readonly registrytoken?: string;
  readonly [key: string]: unknown;
}

export interface DockerConfigFile {
  readonly auths?: Readonly<Record<string, DockerAuthEntry>>;
  readonly credHelpers?: Readonly<Record<string, string>>;
  readonly credsStore?: string;
  readonly [key: string]: unknown;
}

/** A config.json that is not JSON, or whose credential parts have the wrong shape. */
export class DockerConfigError extends StevedoreError {
  override name = 'DockerConfigError';
  constructor(readonly path: string, reason: string, options?: { cause?: unknown }) {
    super('INVALID_DOCKER_CONFIG', `${path}: ${reason}`, options);
  }
}

/** A `docker-credential-NAME` helper failed (not "credentials not found", which is no error). */
export class CredentialHelperError extends StevedoreError {
  override name = 'CredentialHelperError';
  constructor(readonly helper: string, reason: string, options?: { cause?: unknown }) {
    super('CREDENTIAL_HELPER_FAILED', `docker-credential-${helper}: ${reason}`, options);
  }
}

export interface DockerConfigOptions {
  /** The config.json path; default `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
  readonly path?: string | undefined;
  /** Environment for `DOCKER_CONFIG`, `HOME` and credential helpers; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Bound on each credential helper run. */
  readonly helperTimeoutMs?: number | undefined;
}

const DEFAULT_HELPER_TIMEOUT_MS = 30_000;

/** Where Docker (and skopeo, buildah, crane) look for config.json. */
export function dockerConfigPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const dir = env.DOCKER_CONFIG;
  if (dir !== undefined && dir !== '') return join(dir, 'config.json');
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  return join(home, '.docker', 'config.json');
}

/** Reads config.json; a missing file is an empty config. */
export async function readDockerConfig(path: string): Promise<DockerConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new DockerConfigError(path, `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
  }
  if (text.trim() === '') return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes file content, which may be a secret: say only where.
    throw new DockerConfigError(path, 'not valid JSON');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new DockerConfigError(path, 'not a JSON object');
  const config = json as Record<string, unknown>;
  checkRecord(path, config.auths, 'auths', (v) => v !== null && typeof v === 'object' && !Array.isArray(v));
  checkRecord(path, config.credHelpers, 'credHelpers', (v) => typeof v === 'string');
  if (config.credsStore !== undefined && typeof config.credsStore !== 'string') throw new DockerConfigError(path, '"credsStore" must be a string');
  return config as DockerConfigFile;
}

function checkRecord(path: string, value: unknown, key: string, valid: (v: unknown) => boolean): void {
  if (value === undefined) return;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new DockerConfigError(path, `"${key}" must be an object`);
  for (const [k, v] of Object.entries(value)) {
    if (!valid(v)) throw new DockerConfigError(path, `"${key}.${k}" has the wrong type`);
  }
}

/** The config.json keys that may hold a registry's entry, most specific first. */
function candidateKeys(registry: string): string[] {
  return isDockerHub(registry) ? [DOCKER_HUB_CONFIG_KEY, 'index.docker.io', 'docker.io', 'registry-1.docker.io'] : [registry];
}

/** Finds a map entry for a registry: an exact key first, then a key whose host part matches. */
function lookup<T>(map: Readonly<Record<string, T>> | undefined, registry: string): [string, T] | undefined {
  if (map === undefined) return undefined;
  const keys = candidateKeys(registry);
  for (const key of keys) {
    if (Object.hasOwn(map, key)) return [key, map[key]!];
  }
  const hosts = new Set(keys.map(configKeyHost));
  for (const [key, value] of Object.entries(map)) {
    if (hosts.has(configKeyHost(key))) return [key, value];
  }
  return undefined;
}

/** The credential an `auths` entry holds, or undefined when it holds none (an empty entry). */
export function credentialFromEntry(entry: DockerAuthEntry): Credential | undefined {
  const fromAuth = typeof entry.auth === 'string' ? decodeDockerAuth(entry.auth) : undefined;
  const username = typeof entry.username === 'string' && entry.username !== '' ? entry.username : fromAuth?.username;
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
    return username === undefined ? { identityToken: entry.identitytoken } : { identityToken: entry.identitytoken, username };
  }
  if (typeof entry.registrytoken === 'string' && entry.registrytoken !== '') return { registryToken: entry.registrytoken };
  if (fromAuth) return fromAuth;
  if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username !== '') {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

/** The credential helper name config.json assigns to a registry, if any. */
function helperFor(config: DockerConfigFile, registry: string): string | undefined {
  const specific = lookup(config.credHelpers, registry);
  if (specific && specific[1] !== '') return specific[1];
  return config.credsStore !== undefined && config.credsStore !== '' ? config.credsStore : undefined;
}

/**
 * Looks up a registry's credential the way Docker does: the per-host helper or the default
 * store when configured (falling back to `auths` when the helper has nothing), else `auths`.
 */
export async function dockerConfigCredential(registry: string, options: DockerConfigOptions = {}): Promise<Credential | undefined> {
  const env = options.env ?? process.env;
  const path = options.path ?? dockerConfigPath(env);
  const config = await readDockerConfig(path);
  const helper = helperFor(config, registry);
  if (helper !== undefined) {
    const fromHelper = await runCredentialHelperGet(helper, dockerConfigKey(registry), env, options.helperTimeoutMs);
    if (fromHelper !== undefined) return fromHelper;
  }
  const entry = lookup(config.auths, registry);
  return entry ? credentialFromEntry(entry[1]) : undefined;
}

/**
 * A provider reading Docker's config.json on every lookup (so `stevedore login` in another
 * process is seen, and a rotated file is picked up, as mk3's pull-secret watcher does).
 */
export function dockerConfigCredentials(options: DockerConfigOptions = {}): CredentialProvider {
  return (registry) => dockerConfigCredential(registry, options);
}

interface HelperResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

async function runHelper(
  helper: string,
  action: 'get' | 'store' | 'erase',
  input: string,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs = DEFAULT_HELPER_TIMEOUT_MS,
): Promise<HelperResult> {
  if (!/^[A-Za-z0-9._-]+$/.test(helper)) throw new CredentialHelperError(helper.slice(0, 50), 'invalid helper name');
  const program = `docker-credential-${helper}`;
  return await new Promise<HelperResult>((resolve, reject) => {
    const child = spawn(program, [action], { env: env as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    const out: Buffer[] = [];
    const errOut: Buffer[] = [];
    let outSize = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      // A helper's answer is a small JSON object; cap what we hold.
      if ((outSize += chunk.length) <= 1 << 20) out.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (errOut.length < 64) errOut.push(chunk);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(new CredentialHelperError(helper, err.code === 'ENOENT' ? `${program} is not installed (not on PATH)` : `cannot run (${err.code ?? err.message})`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      if (signal !== null) {
        reject(new CredentialHelperError(helper, `${action} was stopped by ${signal}${signal === 'SIGTERM' ? ` (timeout ${timeoutMs} ms?)` : ''}`));
        return;
      }
      resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8') });
    });
    child.stdin.on('error', () => {
      // The helper may exit without reading stdin; its exit code tells what happened.
    });
    child.stdin.end(input);
  });
}

const NOT_FOUND_MESSAGE = /credentials not found/i;

async function runCredentialHelperGet(
  helper: string,
  serverUrl: string,
  env: Readonly<Record<string, string | undefined>>,
  timeoutMs?: number,
): Promise<Credential | undefined> {
  const result = await runHelper(helper, 'get', serverUrl, env, timeoutMs);
  if (result.code !== 0) {
    if (NOT_FOUND_MESSAGE.test(result.stdout) || NOT_FOUND_MESSAGE.test(result.stderr)) return undefined;
    throw new CredentialHelperError(helper, `get failed with exit code ${result.code}: ${firstLine(result.stderr || result.stdout)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch {
    throw new CredentialHelperError(helper, 'get did not print JSON');
  }
  const { Username, Secret } = (json ?? {}) as { Username?: unknown; Secret?: unknown };
  if (typeof Secret !== 'string' || Secret === '') return undefined;
  const username = typeof Username === 'string' ? Username : '';
  // Docker's convention: the user name `<token>` marks an identity token.
  if (username === '<token>') return { identityToken: Secret };
  return { username, password: Secret };
}

function firstLine(text: string): string {
  const line = text.trim().split('\n')[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line || '(no output)';
}

/**
 * Stores a registry login: through the configured credential helper (leaving an empty `auths`
 * entry, as Docker does), else as base64 `auth` in `auths`. Other keys of the file are kept;
 * the file is replaced atomically with mode 0600.
 */
export async function storeDockerCredential(registry: string, credential: PasswordCredential, options: DockerConfigOptions = {}): Promise<void> {
  const env = options.env ?? process.env;
  const path = options.path ?? dockerConfigPath(env);
  const config = await readDockerConfig(path);
  const key = dockerConfigKey(registry);
  const helper = helperFor(config, registry);
  const auths: Record<string, DockerAuthEntry> = { ...(config.auths ?? {}) };
  // Drop entries for the same host under another spelling, so one lookup order cannot find a stale one.
  const existing = lookup(auths, registry);
  if (existing && existing[0] !== key) delete auths[existing[0]];
  if (helper !== undefined) {
    const payload = JSON.stringify({ ServerURL: key, Username: credential.username, Secret: credential.password });
    const result = await runHelper(helper, 'store', payload, env, options.helperTimeoutMs);
    if (result.code !== 0) throw new CredentialHelperError(helper, `store failed with exit code ${result.code}: ${firstLine(result.stderr || result.stdout)}`);
    auths[key] = {};
  } else {
    auths[key] = { auth: encodeDockerAuth(credential.username, credential.password) };
  }
  await writeDockerConfig(path, { ...config, auths });
}

/**
 * Removes a registry login from the file and from the credential helper. Resolves `false` when
 * there was nothing to remove.
 */
export async function eraseDockerCredential(registry: string, options: DockerConfigOptions = {}): Promise<boolean> {
  const env = options.env ?? process.env;
  const path = options.path ?? dockerConfigPath(env);
  const config = await readDockerConfig(path);
  const helper = helperFor(config, registry);
  let removed = false;
  if (helper !== undefined) {
    const result = await runHelper(helper, 'erase', dockerConfigKey(registry), env, options.helperTimeoutMs);
    if (result.code === 0) removed = true;
    else if (!NOT_FOUND_MESSAGE.test(result.stdout) && !NOT_FOUND_MESSAGE.test(result.stderr)) {
      throw new CredentialHelperError(helper, `erase failed with exit code ${result.code}: ${firstLine(result.stderr || result.stdout)}`);
    }
  }
  const auths: Record<string, DockerAuthEntry> = { ...(config.auths ?? {}) };
  let entry = lookup(auths, registry);
  while (entry) {
    delete auths[entry[0]];
    removed = true;
    entry = lookup(auths, registry);
  }
  if (config.auths !== undefined) await writeDockerConfig(path, { ...config, auths });
  return removed;
}

/** Writes config.json atomically (temp file in the same directory, fsync, rename), mode 0600. */
export async function writeDockerConfig(path: string, config: DockerConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const temp = join(dirname(path), `.config.json.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(config, null, '\t')}\n`, 'utf8');
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(temp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    // The umask may have narrowed the mode further, never widened it; set it exactly.
    await chmod(temp, 0o600);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}
