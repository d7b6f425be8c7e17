import { createHash } from 'node:crypto';
import { parseReference } from '../oci/index.js';
import type { Credential, CredentialProvider } from '../registry/index.js';
import { isPasswordCredential } from '../registry/index.js';
import { ServiceError } from './errors.js';
import type { RegistryAuthRequest } from './types.js';

/**
 * mk3's `BuildRegistryAuth` semantics (SPEC-gitpod.md §8): which registries a request may use
 * the installation's credentials for, and the user's own credentials (`additional`) as the
 * fallback. Installation credentials come first for an allowed host (cf. gitpod#10089); a host
 * that is not allowed gets only the user's.
 */

/** An `additional` entry decoded as mk3 does: `auth` always the raw value, the pair when it decodes. */
export interface AdditionalAuth {
  readonly auth: string;
  readonly username?: string;
  readonly password?: string;
}

/**
 * Decodes one `additional` value: base64 of `user:password`, split on the LAST colon (so
 * `host:5000:token` gives user `host:5000`). Fewer than two parts, or not base64: only `auth`.
 */
export function decodeAdditionalAuth(value: string): AdditionalAuth {
  const trimmed = value.trim();
  if (trimmed === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 === 1) return { auth: value };
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8');
  const colon = decoded.lastIndexOf(':');
  if (colon < 0) return { auth: value };
  return { auth: value, username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** mk3's `additionalAuth`: the decoded entry for a host, undefined when the map has none. */
export function additionalAuthFor(additional: Readonly<Record<string, string>> | undefined, host: string): AdditionalAuth | undefined {
  if (additional === undefined || !Object.hasOwn(additional, host)) return undefined;
  return decodeAdditionalAuth(additional[host]!);
}

const ECR_HOST = /^\d{12}\.dkr\.ecr\.[a-z0-9]+-[a-z0-9]+-[a-z0-9]+\.amazonaws\.com(?::\d+)?$/i;

/**
 * Whether a registry host (or an image reference) is an AWS ECR registry: such hosts are always
 * allowed installation credentials (mk3's special case, kept as a host pattern; no AWS SDK).
 */
export function isEcrRegistry(hostOrReference: string): boolean {
  const host = hostOrReference.split('/')[0] ?? '';
  return ECR_HOST.test(host);
}

/** The registry host of a reference or repository, Docker-normalised (`docker.io`, `host:port`). */
export function registryHostOf(reference: string): string {
  return parseReference(reference, { defaultTag: false }).registry;
}

export interface RegistryAuthContext {
  readonly baseImageRepository: string;
  readonly workspaceImageRepository: string;
  /** The installation's credentials (the pull secret). */
  readonly installation: CredentialProvider;
}

/** Which hosts may use installation credentials. */
export type AllowedRegistries = { readonly all: true } | { readonly all: false; readonly hosts: ReadonlySet<string> };

/**
 * The credential policy of one request: `credentialFor(host)` is what its registry clients use.
 * Plain data plus the installation provider; cheap to make per request.
 */
export class RegistryAuthPolicy {
  readonly allowed: AllowedRegistries;
  readonly additional: Readonly<Record<string, string>>;
  readonly #context: RegistryAuthContext;

  constructor(context: RegistryAuthContext, allowed: AllowedRegistries, additional: Readonly<Record<string, string>> = {}) {
    this.#context = context;
    this.allowed = allowed;
    this.additional = additional;
  }

  /** Whether `host` may use the installation's credentials (ECR hosts always may). */
  isAllowed(host: string): boolean {
    if (this.allowed.all) return true;
    return isEcrRegistry(host) || this.allowed.hosts.has(host);
  }

  /** Installation credentials for an allowed host, else (or when it has none) the user's `additional` entry. */
  async credentialFor(host: string): Promise<Credential | undefined> {
    if (this.isAllowed(host)) {
      const installed = await this.#context.installation(host);
      if (installed !== undefined) return installed;
    }
    return this.userCredentialFor(host);
  }

  /** Only the user's `additional` credential for a host (a raw `auth` that does not decode is no credential). */
  userCredentialFor(host: string): Credential | undefined {
    const entry = additionalAuthFor(this.additional, host);
    if (entry?.username === undefined || entry.password === undefined) return undefined;
    return { username: entry.username, password: entry.password };
  }

  /**
   * Identifies the policy's behaviour (allowed hosts and user credentials): two policies with the
   * same fingerprint answer every lookup alike, so their registry clients may be shared.
   */
  fingerprint(): string {
    const allowed = this.allowed.all ? '*' : [...this.allowed.hosts].sort();
    const additional = Object.entries(this.additional).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return createHash('sha256').update(JSON.stringify([allowed, additional])).digest('hex');
  }

  /** A `CredentialProvider` for registry clients. */
  get provider(): CredentialProvider {
    return (host) => this.credentialFor(host);
  }

  /** The same policy with the base-image repository's registry allowed (mk3's shortcut path for selective auth). */
  withBaseRepositoryAllowed(): RegistryAuthPolicy {
    if (this.allowed.all) return this;
    const hosts = new Set(this.allowed.hosts);
    hosts.add(registryHostOf(this.#context.baseImageRepository));
    return new RegistryAuthPolicy(this.#context, { all: false, hosts }, this.additional);
  }

  /** Every secret value the request carries (raw `auth` strings and decoded passwords), for log censoring. */
  secrets(): string[] {
    const out: string[] = [];
    for (const value of Object.values(this.additional)) {
      const entry = decodeAdditionalAuth(value);
      if (entry.auth !== '') out.push(entry.auth);
      if (entry.password !== undefined && entry.password !== '') out.push(entry.password);
    }
    return out;
  }
}

/**
 * Resolves a request's `auth` into its policy: none → nothing allowed; `total` → all or
 * nothing; `selective` → the base and/or workspace repository's registry plus `anyOf`
 * (compared verbatim with the Docker-normalised host). `additional` is kept in every mode.
 */
export function registryAuthPolicy(request: RegistryAuthRequest | undefined, context: RegistryAuthContext): RegistryAuthPolicy {
  const additional = request?.additional ?? {};
  for (const [host, value] of Object.entries(additional)) {
    if (typeof value !== 'string') throw new ServiceError('INVALID_ARGUMENT', `auth.additional[${JSON.stringify(host)}] must be a string`);
  }
  const mode = request?.mode;
  if (mode === undefined) return new RegistryAuthPolicy(context, { all: false, hosts: new Set() }, additional);
  if (mode.kind === 'total') return new RegistryAuthPolicy(context, mode.allowAll ? { all: true } : { all: false, hosts: new Set() }, additional);
  const hosts = new Set<string>();
  if (mode.allowBaseRepository) hosts.add(registryHostOf(context.baseImageRepository));
  if (mode.allowWorkspaceRepository) hosts.add(registryHostOf(context.workspaceImageRepository));
  for (const host of mode.anyOf) hosts.add(host);
  return new RegistryAuthPolicy(context, { all: false, hosts }, additional);
}

/** mk3's `AllowedAuthForAll`: installation credentials for every registry (existence checks, pushes). */
export function allowAllPolicy(context: RegistryAuthContext): RegistryAuthPolicy {
  return new RegistryAuthPolicy(context, { all: true });
}

/** The password or token a credential carries, for log censoring. */
export function credentialSecrets(credential: Credential | undefined): string[] {
  if (credential === undefined) return [];
  if (isPasswordCredential(credential)) return credential.password === '' ? [] : [credential.password];
  if ('identityToken' in credential) return [credential.identityToken];
  return [credential.registryToken];
}
