// The public surface of src/registry: a distribution-spec client. Other modules import from here.
export {
  RegistryError,
  isRegistryError,
  isNotFoundError,
  isAuthError,
  isTemporaryError,
  redactUrl,
  REGISTRY_ERROR_CODES,
  type RegistryErrorCode,
  type RegistryErrorDetail,
  type RegistryErrorInit,
} from './errors.js';
export {
  defaultRetryPolicy,
  gitpodRetryPolicy,
  noRetryPolicy,
  retryPolicies,
  withRetries,
  backoffDelay,
  parseRetryAfter,
  type RetryPolicy,
  type RetryInfo,
  type RetryOptions,
} from './retry.js';
export { parseChallenges, type Challenge } from './challenge.js';
export {
  anonymousCredentials,
  chainCredentials,
  staticCredentials,
  decodeDockerAuth,
  encodeDockerAuth,
  isPasswordCredential,
  isIdentityTokenCredential,
  isRegistryTokenCredential,
  type Credential,
  type CredentialProvider,
  type PasswordCredential,
  type IdentityTokenCredential,
  type RegistryTokenCredential,
} from './credentials.js';
export {
  dockerConfigPath,
  readDockerConfig,
  writeDockerConfig,
  dockerConfigCredential,
  dockerConfigCredentials,
  storeDockerCredential,
  eraseDockerCredential,
  credentialFromEntry,
  DockerConfigError,
  CredentialHelperError,
  type DockerConfigFile,
  type DockerAuthEntry,
  type DockerConfigOptions,
} from './dockerconfig.js';
export { DOCKER_HUB, DOCKER_HUB_CONFIG_KEY, apiHost, isLoopbackHost, isDockerHub, dockerConfigKey } from './hosts.js';
export { repositoryScope, type RepositoryAction } from './scope.js';
export { PROGRESS_STEP, type RegistryEvent, type RegistryEventListener } from './events.js';
export { REGISTRY_DEFAULTS, type RegistryClientOptions, type RegistryTlsOptions } from './options.js';
export { RegistryClient, type AuthScheme, type PingResult } from './client.js';
export { RegistryClientPool } from './pool.js';
export { RegistryRepository, MANIFEST_ACCEPT, type ManifestResult, type PushBlobOptions, type PushOutcome } from './repository.js';
export { BlobUploadTap, type BlobOpener, type StreamedBlob, type UploadTapOptions } from './upload.js';
export { resolveReference, PlatformNotFoundError, type ResolveReferenceOptions, type ResolvedImage } from './resolve.js';
