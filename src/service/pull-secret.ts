import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Credential, CredentialProvider, DockerConfigFile } from '../registry/index.js';
import { credentialFromEntry, DOCKER_HUB_CONFIG_KEY, DockerConfigError, isDockerHub } from '../registry/index.js';
import { credentialSecrets } from './auth.js';

/**
 * The installation's credentials: a Docker config.json (mk3's `pullSecretFile`, a mounted
 * Kubernetes `.dockerconfigjson`). Read with docker/cli's `configfile` semantics: only `auths`
 * (no credential helpers: a service must not run programs named by a mounted file), looked up by
 * exact key, then by a key whose host part matches. Re-read when the file changes (content hash
 * compared, as mk3's watcher does), so a rotated secret is picked up without a restart.
 */
export class PullSecret {
  readonly path: string;
  #hash = '';
  #config: DockerConfigFile = {};
  #loading: Promise<void> | undefined;

  constructor(path: string) {
    this.path = path;
  }

  /** The credential for a registry host, or undefined (the file missing means no credentials). */
  async credentialFor(host: string): Promise<Credential | undefined> {
    await this.#refresh();
    const auths = this.#config.auths ?? {};
    for (const key of candidateKeys(host)) {
      if (Object.hasOwn(auths, key)) return credentialFromEntry(auths[key]!);
    }
    for (const [key, entry] of Object.entries(auths)) {
      if (candidateKeys(host).includes(keyHost(key))) return credentialFromEntry(entry);
    }
    return undefined;
  }

  get provider(): CredentialProvider {
    return (host) => this.credentialFor(host);
  }

  /** Every secret value in the file, for log censoring. */
  async secrets(): Promise<string[]> {
    await this.#refresh();
    const out: string[] = [];
    for (const entry of Object.values(this.#config.auths ?? {})) {
      if (typeof entry.auth === 'string' && entry.auth !== '') out.push(entry.auth);
      out.push(...credentialSecrets(credentialFromEntry(entry)));
    }
    return out;
  }

  async #refresh(): Promise<void> {
    // One read at a time; concurrent lookups share it.
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    await this.#loading;
  }

  async #load(): Promise<void> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.#hash = '';
        this.#config = {};
        return;
      }
      throw new DockerConfigError(this.path, `cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
    }
    const hash = createHash('sha256').update(bytes).digest('hex');
    if (hash === this.#hash) return;
    let json: unknown;
    try {
      json = JSON.parse(bytes.toString('utf8'));
    } catch {
      // JSON.parse's message would quote the file, which holds secrets.
      throw new DockerConfigError(this.path, 'not valid JSON');
    }
    const auths = (json as { auths?: unknown } | null)?.auths;
    if (json === null || typeof json !== 'object' || (auths !== undefined && (auths === null || typeof auths !== 'object' || Array.isArray(auths)))) {
      throw new DockerConfigError(this.path, 'expected a JSON object with an "auths" object');
    }
    this.#config = json as DockerConfigFile;
    this.#hash = hash;
  }
}

function candidateKeys(host: string): string[] {
  return isDockerHub(host) ? [host, DOCKER_HUB_CONFIG_KEY, 'docker.io', 'index.docker.io', 'registry-1.docker.io'] : [host];
}

/** A config key's `host[:port]`: scheme and path stripped (docker/cli's `ConvertToHostname`). */
function keyHost(key: string): string {
  const noScheme = key.includes('://') ? key.slice(key.indexOf('://') + 3) : key;
  const slash = noScheme.indexOf('/');
  return slash < 0 ? noScheme : noScheme.slice(0, slash);
}
