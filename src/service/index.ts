// The public surface of src/service: Gitpod's image builder (mk3) as a library. src/api adapts it
// to gRPC and HTTP; the CLI and embedders may use it directly.
export type {
  ImageBuildStatus,
  RegistryAuthRequest,
  WorkspaceInitializerSpec,
  GitInitializerSpec,
  GitInitializerConfig,
  DownloadInitializerSpec,
  DockerfileBuildSource,
  ImageBuildSource,
  ImageBuildInfo,
  ImageBuildUpdate,
  ImageBuildRequest,
} from './types.js';
export { ServiceError, ServiceConfigError, serviceStatusOf, isServiceError, type ServiceStatusCode } from './errors.js';
export { parseServiceConfig, loadServiceConfig, repositoryProblem, SERVICE_CONFIG_DEFAULTS, type ServiceConfig } from './config.js';
export { parseGoDuration, formatDuration } from './duration.js';
export { MetricsRegistry, DEFAULT_BUCKETS, escapeHelp, escapeLabelValue, type Counter, type Gauge, type Histogram } from './metrics.js';
export { hashFields, baseRefFields, dockerfileBaseRef, workspaceImageRef, refCensorWords, WORKSPACE_BUILD_PROCESS_VERSION } from './refs.js';
export {
  RegistryAuthPolicy,
  registryAuthPolicy,
  allowAllPolicy,
  decodeAdditionalAuth,
  additionalAuthFor,
  isEcrRegistry,
  registryHostOf,
  type AdditionalAuth,
  type AllowedRegistries,
  type RegistryAuthContext,
} from './auth.js';
export { PullSecret } from './pull-secret.js';
export { ImageResolver, RefCache, resolutionError, type ResolveOptions, type ResolverOptions } from './resolve.js';
export { BuildLog, Censor } from './logs.js';
export { BuildEventRenderer } from './render.js';
export { materializeWorkspace, InitializerError, workspacePath, type InitializerContext } from './initializer/index.js';
export { LOG_TOKEN_HEADER } from './record.js';
export { ImageBuilderService, type ImageBuilderServiceOptions } from './service.js';
