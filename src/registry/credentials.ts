/**
 * Registry credentials and where they come from. A credential is plain data; a provider is a
 * function from a registry host to a credential, so callers plug in any source (Docker's
 * config.json, a secret store, Gitpod's per-build auth) without the client knowing.
 */

/** Username and password (or a personal access token used as a password). */
export interface PasswordCredential {
  readonly username: string;
  readonly password: string;
}

/** An OAuth2 refresh token (Docker's `identitytoken`), exchanged at the token realm by POST. */
export interface IdentityTokenCredential {
  readonly identityToken: string;
  /** Some registries want the account name alongside the token. */
  readonly username?: string;
}

/** A bearer token sent as-is (Docker's `registrytoken`), no token exchange. */
export interface RegistryTokenCredential {
  readonly registryToken: string;
}

export type Credential = PasswordCredential | IdentityTokenCredential | RegistryTokenCredential;

/**
 * Looks up the credential for a registry host (`host[:port]`, `docker.io` for Docker Hub);
 * `undefined` means anonymous.
 */
export type CredentialProvider = (registry: string) => Promise<Credential | undefined> | Credential | undefined;

export function isPasswordCredential(c: Credential | undefined): c is PasswordCredential {
  return c !== undefined && 'password' in c;
}

export function isIdentityTokenCredential(c: Credential | undefined): c is IdentityTokenCredential {
  return c !== undefined && 'identityToken' in c;
}

export function isRegistryTokenCredential(c: Credential | undefined): c is RegistryTokenCredential {
  return c !== undefined && 'registryToken' in c;
}

/** A provider that answers from a fixed map of host → credential. */
export function staticCredentials(map: Readonly<Record<string, Credential>>): CredentialProvider {
  return (registry) => map[registry];
}

/** A provider that asks each provider in turn; the first credential found wins. */
export function chainCredentials(...providers: readonly CredentialProvider[]): CredentialProvider {
  return async (registry) => {
    for (const provider of providers) {
      const found = await provider(registry);
      if (found !== undefined) return found;
    }
    return undefined;
  };
}

/** An anonymous provider: never any credential. */
export const anonymousCredentials: CredentialProvider = () => undefined;

/**
 * Decodes Docker's `auth` field (base64 of `user:password`). The split is on the first colon,
 * as Docker does: usernames have no colon, passwords and tokens may. Returns undefined when the
 * value is not base64 of something with a colon.
 */
export function decodeDockerAuth(auth: string): PasswordCredential | undefined {
  const trimmed = auth.trim();
  if (trimmed === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) return undefined;
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Docker's `auth` field for a username and password. */
export function encodeDockerAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}
