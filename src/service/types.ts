// The request and answer shapes of the image-builder service: the proto messages of
// `builder.ImageBuilder` (imgbuilder.proto) and `contentservice.WorkspaceInitializer`
// (initializer.proto) as plain camelCase data. No wire type appears here: src/api translates.

export type ImageBuildStatus = 'unknown' | 'running' | 'done_success' | 'done_failure';

export interface RegistryAuthRequest {
  readonly mode?:
    | { readonly kind: 'total'; readonly allowAll: boolean }
    | { readonly kind: 'selective'; readonly allowBaseRepository: boolean; readonly allowWorkspaceRepository: boolean; readonly anyOf: readonly string[] }
    | undefined;
  /** host → base64 `user:password` (split on the LAST colon). */
  readonly additional?: Readonly<Record<string, string>> | undefined;
}

export interface GitInitializerConfig {
  readonly customConfig: Readonly<Record<string, string>>;
  readonly authentication: 'NO_AUTH' | 'BASIC_AUTH' | 'BASIC_AUTH_OTS';
  readonly authUser: string;
  readonly authPassword: string;
  /** A URL whose GET answers `user:password` (split on the first colon). */
  readonly authOts: string;
}

export interface GitInitializerSpec {
  readonly kind: 'git';
  readonly remoteUri: string;
  readonly upstreamRemoteUri: string;
  readonly targetMode: 'REMOTE_HEAD' | 'REMOTE_COMMIT' | 'REMOTE_BRANCH' | 'LOCAL_BRANCH';
  /** The commit or branch `targetMode` names (the proto's `clone_taget`). */
  readonly cloneTarget: string;
  /** Where the checkout goes, relative to the workspace root. */
  readonly checkoutLocation: string;
  readonly config?: GitInitializerConfig | undefined;
  readonly fullClone: boolean;
}

export interface DownloadInitializerSpec {
  readonly kind: 'download';
  readonly files: readonly { readonly url: string; readonly filePath: string; readonly digest: string }[];
  readonly targetLocation: string;
}

export type WorkspaceInitializerSpec =
  | { readonly kind: 'empty' }
  | GitInitializerSpec
  | DownloadInitializerSpec
  | { readonly kind: 'composite'; readonly initializers: readonly WorkspaceInitializerSpec[] }
  /** Not supported for builds: INVALID_ARGUMENT naming the kind. */
  | { readonly kind: 'snapshot' | 'prebuild' | 'backup' };

export interface DockerfileBuildSource {
  readonly kind: 'file';
  readonly initializer?: WorkspaceInitializerSpec | undefined;
  readonly dockerfileVersion: string;
  readonly dockerfilePath: string;
  readonly contextPath: string;
}

export type ImageBuildSource = { readonly kind: 'ref'; readonly ref: string } | DockerfileBuildSource;

export interface ImageBuildInfo {
  readonly ref: string;
  readonly baseRef: string;
  readonly status: ImageBuildStatus;
  /** Unix seconds. */
  readonly startedAt: number;
  readonly buildId: string;
  /** Stevedore's HTTP log endpoint for the build and the header that authorises it. */
  readonly logInfo?: { readonly url: string; readonly headers: Readonly<Record<string, string>> } | undefined;
}

/** One BuildResponse. `ref`/`baseRef`/`status` mirror `info` when `info` is present. */
export interface ImageBuildUpdate {
  readonly ref: string;
  readonly baseRef: string;
  readonly status: ImageBuildStatus;
  readonly message: string;
  readonly info?: ImageBuildInfo | undefined;
}

export interface ImageBuildRequest {
  readonly source?: ImageBuildSource | undefined;
  readonly auth?: RegistryAuthRequest | undefined;
  readonly forceRebuild?: boolean | undefined;
  readonly triggeredBy?: string | undefined;
  readonly supervisorRef?: string | undefined;
  readonly baseImageNameResolved?: string | undefined;
  readonly useRetryClient?: boolean | undefined;
}
