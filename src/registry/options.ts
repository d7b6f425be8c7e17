import type { Credential, CredentialProvider } from './credentials.js';
import type { RegistryEventListener } from './events.js';
import type { RetryPolicy } from './retry.js';
import { defaultRetryPolicy } from './retry.js';

/** TLS settings for a registry: PEM data or file paths (read once, when the client starts). */
export interface RegistryTlsOptions {
  /** PEM CA certificate(s) to trust for this registry, in addition to Node's bundle. */
  readonly ca?: string | Buffer | readonly (string | Buffer)[] | undefined;
  readonly caFile?: string | undefined;
  /** A client certificate and key (PEM), for registries that require mutual TLS. */
  readonly cert?: string | Buffer | undefined;
  readonly certFile?: string | undefined;
  readonly key?: string | Buffer | undefined;
  readonly keyFile?: string | undefined;
}

/** One options object for talking to registries; every field has a default in `REGISTRY_DEFAULTS`. */
export interface RegistryClientOptions {
  /**
   * A credential for this registry, or a provider asked per registry host. Default: Docker's
   * config.json (`$DOCKER_CONFIG` or `~/.docker/config.json`, with credential helpers).
   */
  readonly credentials?: Credential | CredentialProvider | undefined;
  /**
   * Hosts (`host[:port]`) allowed over plain HTTP and with unverified TLS, like Docker's
   * `--insecure-registry`. Loopback hosts are always allowed plain HTTP (HTTPS tried first) but
   * keep TLS verification.
   */
  readonly insecureRegistries?: readonly string[] | undefined;
  readonly tls?: RegistryTlsOptions | undefined;
  readonly retryPolicy?: RetryPolicy | undefined;
  readonly onEvent?: RegistryEventListener | undefined;
  readonly userAgent?: string | undefined;
  /** Blob uploads at once through one client (downloads are paced by their consumers). */
  readonly maxConcurrentUploads?: number | undefined;
  /** Keep-alive connections per origin. */
  readonly connections?: number | undefined;
  /**
   * Blobs up to this size are read into memory and sent in one PUT, so a failure can be retried
   * from the start even when their source was a one-shot stream.
   */
  readonly monolithicUploadLimit?: number | undefined;
  /**
   * Larger one-shot streams go in one streamed PATCH by default (0): fastest and memory-flat, but
   * an interruption is fatal since the bytes sent are gone. A size > 0 sends PATCH chunks of that
   * size instead, each held in memory until the registry has it, so a dropped connection resumes
   * from the registry's `Range` (measured on loopback: about 20% slower at 8-16 MiB chunks, and
   * distribution 2.8 cannot resume a session whose PATCH it half-received). Re-openable sources
   * (`BlobOpener`) never need this: they restart from a new POST.
   */
  readonly uploadChunkSize?: number | undefined;
  /** Use the OAuth2 password grant (POST) at the token realm for username/password credentials. */
  readonly oauth2Password?: boolean | undefined;
}

export const REGISTRY_DEFAULTS = Object.freeze({
  userAgent: 'stevedore/0.1.0',
  retryPolicy: defaultRetryPolicy,
  maxConcurrentUploads: 6,
  connections: 16,
  monolithicUploadLimit: 4 * 1024 * 1024,
  uploadChunkSize: 0,
  oauth2Password: false,
});
