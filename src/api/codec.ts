// Wire ⇄ library translation, and nothing else: decoded protobuf objects (snake_case wire names,
// defaults filled in, oneofs named) become the library's request types; the library's answers
// become response objects. No validation beyond what the wire cannot express in the library's
// types (an enum number the proto does not define, an initializer with no member set inside a
// composite): those are the client's mistakes and answer INVALID_ARGUMENT.
import {
  ServiceError,
  type ImageBuildInfo,
  type ImageBuildRequest,
  type ImageBuildSource,
  type ImageBuildStatus,
  type ImageBuildUpdate,
  type RegistryAuthRequest,
  type SubassemblyPhase,
  type SubassemblyStatus,
  type WorkspaceInitializerSpec,
} from '../index.js';
import type { BuildInfo } from './gen/builder/BuildInfo.js';
import type { BuildRegistryAuth__Output } from './gen/builder/BuildRegistryAuth.js';
import type { BuildRequest__Output } from './gen/builder/BuildRequest.js';
import type { BuildResponse } from './gen/builder/BuildResponse.js';
import type { BuildSource__Output } from './gen/builder/BuildSource.js';
import type { SubassemblyPhase__Output } from './gen/builder/SubassemblyPhase.js';
import type { SubassemblyStatus as WireSubassemblyStatus } from './gen/builder/SubassemblyStatus.js';
import type { GitConfig__Output } from './gen/contentservice/GitConfig.js';
import type { WorkspaceInitializer__Output } from './gen/contentservice/WorkspaceInitializer.js';

// ------------------------------------------------------------------------------------ requests

/** One of an enum's names, or INVALID_ARGUMENT naming the field (an unknown number decodes as a number). */
function enumValue<T extends string>(value: unknown, names: readonly T[], field: string): T {
  if (typeof value === 'string' && (names as readonly string[]).includes(value)) return value as T;
  throw new ServiceError('INVALID_ARGUMENT', `${field}: unknown value ${JSON.stringify(value)}`);
}

const TARGET_MODES = ['REMOTE_HEAD', 'REMOTE_COMMIT', 'REMOTE_BRANCH', 'LOCAL_BRANCH'] as const;
const GIT_AUTH_METHODS = ['NO_AUTH', 'BASIC_AUTH', 'BASIC_AUTH_OTS'] as const;

export function decodeAuth(wire: BuildRegistryAuth__Output | null | undefined): RegistryAuthRequest | undefined {
  if (wire === null || wire === undefined) return undefined;
  let mode: RegistryAuthRequest['mode'];
  if (wire.mode === 'total' && wire.total) mode = { kind: 'total', allowAll: wire.total.allow_all };
  else if (wire.mode === 'selective' && wire.selective) {
    mode = {
      kind: 'selective',
      allowBaseRepository: wire.selective.allow_baserep,
      allowWorkspaceRepository: wire.selective.allow_workspacerep,
      anyOf: [...wire.selective.any_of],
    };
  }
  return { mode, additional: { ...wire.additional } };
}

function decodeGitConfig(wire: GitConfig__Output | null, field: string): NonNullable<Extract<WorkspaceInitializerSpec, { kind: 'git' }>['config']> | undefined {
  if (wire === null) return undefined;
  return {
    customConfig: { ...wire.custom_config },
    authentication: enumValue(wire.authentication, GIT_AUTH_METHODS, `${field}.authentication`),
    authUser: wire.auth_user,
    authPassword: wire.auth_password,
    authOts: wire.auth_ots,
  };
}

/** A WorkspaceInitializer; undefined when no member of its `spec` oneof is set. */
export function decodeInitializer(wire: WorkspaceInitializer__Output | null | undefined, field = 'source'): WorkspaceInitializerSpec | undefined {
  if (wire === null || wire === undefined) return undefined;
  switch (wire.spec) {
    case undefined:
      return undefined;
    case 'empty':
      return { kind: 'empty' };
    case 'git': {
      const git = wire.git!;
      return {
        kind: 'git',
        remoteUri: git.remote_uri,
        upstreamRemoteUri: git.upstream_Remote_uri,
        targetMode: enumValue(git.target_mode, TARGET_MODES, `${field}.git.target_mode`),
        cloneTarget: git.clone_taget,
        checkoutLocation: git.checkout_location,
        config: decodeGitConfig(git.config, `${field}.git.config`),
        fullClone: git.full_clone,
      };
    }
    case 'download': {
      const download = wire.download!;
      return {
        kind: 'download',
        files: download.files.map((f) => ({ url: f.url, filePath: f.file_path, digest: f.digest })),
        targetLocation: download.target_location,
      };
    }
    case 'composite':
      return {
        kind: 'composite',
        initializers: wire.composite!.initializer.map((child, i) => {
          const childField = `${field}.composite.initializer[${i}]`;
          const decoded = decodeInitializer(child, childField);
          if (decoded === undefined) throw new ServiceError('INVALID_ARGUMENT', `${childField}: no initializer set`);
          return decoded;
        }),
      };
    case 'snapshot':
    case 'prebuild':
    case 'backup':
      return { kind: wire.spec };
  }
}

/** A BuildSource; undefined when absent or when neither `ref` nor `file` is set. */
export function decodeSource(wire: BuildSource__Output | null | undefined): ImageBuildSource | undefined {
  if (wire === null || wire === undefined) return undefined;
  if (wire.from === 'ref' && wire.ref) return { kind: 'ref', ref: wire.ref.ref };
  if (wire.from === 'file' && wire.file) {
    return {
      kind: 'file',
      initializer: decodeInitializer(wire.file.source, 'source.file.source'),
      dockerfileVersion: wire.file.dockerfile_version,
      dockerfilePath: wire.file.dockerfile_path,
      contextPath: wire.file.context_path,
    };
  }
  return undefined;
}

export function decodeBuildRequest(wire: BuildRequest__Output): ImageBuildRequest {
  return {
    source: decodeSource(wire.source),
    auth: decodeAuth(wire.auth),
    forceRebuild: wire.force_rebuild,
    triggeredBy: wire.triggered_by,
    supervisorRef: wire.supervisor_ref,
    baseImageNameResolved: wire.base_image_name_resolved,
    useRetryClient: wire.use_retry_client,
  };
}

// ----------------------------------------------------------------------------------- responses

export function encodeInfo(info: ImageBuildInfo): BuildInfo {
  return {
    ref: info.ref,
    base_ref: info.baseRef,
    status: info.status,
    started_at: info.startedAt,
    build_id: info.buildId,
    log_info: info.logInfo === undefined ? null : { url: info.logInfo.url, headers: { ...info.logInfo.headers } },
  };
}

export function encodeBuildUpdate(update: ImageBuildUpdate): BuildResponse {
  return {
    ref: update.ref,
    base_ref: update.baseRef,
    status: update.status satisfies ImageBuildStatus,
    message: update.message,
    info: update.info === undefined ? null : encodeInfo(update.info),
  };
}

const PHASES: Readonly<Record<SubassemblyPhase, SubassemblyPhase__Output>> = {
  CREATING: 'SUBASSEMBLY_PHASE_CREATING',
  AVAILABLE: 'SUBASSEMBLY_PHASE_AVAILABLE',
  UNAVAILABLE: 'SUBASSEMBLY_PHASE_UNAVAILABLE',
};

export function encodeSubassemblyStatus(status: SubassemblyStatus): WireSubassemblyStatus {
  return {
    phase: PHASES[status.phase],
    message: status.message,
    digest: status.digest ?? '',
    url: status.url ?? '',
    manifest: status.manifest === undefined ? Buffer.alloc(0) : Buffer.from(status.manifest.buffer, status.manifest.byteOffset, status.manifest.byteLength),
  };
}
