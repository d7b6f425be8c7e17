import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { BuildInfo as _builder_BuildInfo, BuildInfo__Output as _builder_BuildInfo__Output } from './builder/BuildInfo.js';
import type { BuildRegistryAuth as _builder_BuildRegistryAuth, BuildRegistryAuth__Output as _builder_BuildRegistryAuth__Output } from './builder/BuildRegistryAuth.js';
import type { BuildRegistryAuthSelective as _builder_BuildRegistryAuthSelective, BuildRegistryAuthSelective__Output as _builder_BuildRegistryAuthSelective__Output } from './builder/BuildRegistryAuthSelective.js';
import type { BuildRegistryAuthTotal as _builder_BuildRegistryAuthTotal, BuildRegistryAuthTotal__Output as _builder_BuildRegistryAuthTotal__Output } from './builder/BuildRegistryAuthTotal.js';
import type { BuildRequest as _builder_BuildRequest, BuildRequest__Output as _builder_BuildRequest__Output } from './builder/BuildRequest.js';
import type { BuildResponse as _builder_BuildResponse, BuildResponse__Output as _builder_BuildResponse__Output } from './builder/BuildResponse.js';
import type { BuildSource as _builder_BuildSource, BuildSource__Output as _builder_BuildSource__Output } from './builder/BuildSource.js';
import type { BuildSourceDockerfile as _builder_BuildSourceDockerfile, BuildSourceDockerfile__Output as _builder_BuildSourceDockerfile__Output } from './builder/BuildSourceDockerfile.js';
import type { BuildSourceReference as _builder_BuildSourceReference, BuildSourceReference__Output as _builder_BuildSourceReference__Output } from './builder/BuildSourceReference.js';
import type { ImageBuilderClient as _builder_ImageBuilderClient, ImageBuilderDefinition as _builder_ImageBuilderDefinition } from './builder/ImageBuilder.js';
import type { ListBuildsRequest as _builder_ListBuildsRequest, ListBuildsRequest__Output as _builder_ListBuildsRequest__Output } from './builder/ListBuildsRequest.js';
import type { ListBuildsResponse as _builder_ListBuildsResponse, ListBuildsResponse__Output as _builder_ListBuildsResponse__Output } from './builder/ListBuildsResponse.js';
import type { LogInfo as _builder_LogInfo, LogInfo__Output as _builder_LogInfo__Output } from './builder/LogInfo.js';
import type { LogsRequest as _builder_LogsRequest, LogsRequest__Output as _builder_LogsRequest__Output } from './builder/LogsRequest.js';
import type { LogsResponse as _builder_LogsResponse, LogsResponse__Output as _builder_LogsResponse__Output } from './builder/LogsResponse.js';
import type { ResolveBaseImageRequest as _builder_ResolveBaseImageRequest, ResolveBaseImageRequest__Output as _builder_ResolveBaseImageRequest__Output } from './builder/ResolveBaseImageRequest.js';
import type { ResolveBaseImageResponse as _builder_ResolveBaseImageResponse, ResolveBaseImageResponse__Output as _builder_ResolveBaseImageResponse__Output } from './builder/ResolveBaseImageResponse.js';
import type { ResolveWorkspaceImageRequest as _builder_ResolveWorkspaceImageRequest, ResolveWorkspaceImageRequest__Output as _builder_ResolveWorkspaceImageRequest__Output } from './builder/ResolveWorkspaceImageRequest.js';
import type { ResolveWorkspaceImageResponse as _builder_ResolveWorkspaceImageResponse, ResolveWorkspaceImageResponse__Output as _builder_ResolveWorkspaceImageResponse__Output } from './builder/ResolveWorkspaceImageResponse.js';
import type { CompositeInitializer as _contentservice_CompositeInitializer, CompositeInitializer__Output as _contentservice_CompositeInitializer__Output } from './contentservice/CompositeInitializer.js';
import type { EmptyInitializer as _contentservice_EmptyInitializer, EmptyInitializer__Output as _contentservice_EmptyInitializer__Output } from './contentservice/EmptyInitializer.js';
import type { FileDownloadInitializer as _contentservice_FileDownloadInitializer, FileDownloadInitializer__Output as _contentservice_FileDownloadInitializer__Output } from './contentservice/FileDownloadInitializer.js';
import type { FromBackupInitializer as _contentservice_FromBackupInitializer, FromBackupInitializer__Output as _contentservice_FromBackupInitializer__Output } from './contentservice/FromBackupInitializer.js';
import type { GitConfig as _contentservice_GitConfig, GitConfig__Output as _contentservice_GitConfig__Output } from './contentservice/GitConfig.js';
import type { GitInitializer as _contentservice_GitInitializer, GitInitializer__Output as _contentservice_GitInitializer__Output } from './contentservice/GitInitializer.js';
import type { PrebuildInitializer as _contentservice_PrebuildInitializer, PrebuildInitializer__Output as _contentservice_PrebuildInitializer__Output } from './contentservice/PrebuildInitializer.js';
import type { SnapshotInitializer as _contentservice_SnapshotInitializer, SnapshotInitializer__Output as _contentservice_SnapshotInitializer__Output } from './contentservice/SnapshotInitializer.js';
import type { WorkspaceInitializer as _contentservice_WorkspaceInitializer, WorkspaceInitializer__Output as _contentservice_WorkspaceInitializer__Output } from './contentservice/WorkspaceInitializer.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  builder: {
    BuildInfo: MessageTypeDefinition<_builder_BuildInfo, _builder_BuildInfo__Output>
    BuildRegistryAuth: MessageTypeDefinition<_builder_BuildRegistryAuth, _builder_BuildRegistryAuth__Output>
    BuildRegistryAuthSelective: MessageTypeDefinition<_builder_BuildRegistryAuthSelective, _builder_BuildRegistryAuthSelective__Output>
    BuildRegistryAuthTotal: MessageTypeDefinition<_builder_BuildRegistryAuthTotal, _builder_BuildRegistryAuthTotal__Output>
    BuildRequest: MessageTypeDefinition<_builder_BuildRequest, _builder_BuildRequest__Output>
    BuildResponse: MessageTypeDefinition<_builder_BuildResponse, _builder_BuildResponse__Output>
    BuildSource: MessageTypeDefinition<_builder_BuildSource, _builder_BuildSource__Output>
    BuildSourceDockerfile: MessageTypeDefinition<_builder_BuildSourceDockerfile, _builder_BuildSourceDockerfile__Output>
    BuildSourceReference: MessageTypeDefinition<_builder_BuildSourceReference, _builder_BuildSourceReference__Output>
    BuildStatus: EnumTypeDefinition
    ImageBuilder: SubtypeConstructor<typeof grpc.Client, _builder_ImageBuilderClient> & { service: _builder_ImageBuilderDefinition }
    ListBuildsRequest: MessageTypeDefinition<_builder_ListBuildsRequest, _builder_ListBuildsRequest__Output>
    ListBuildsResponse: MessageTypeDefinition<_builder_ListBuildsResponse, _builder_ListBuildsResponse__Output>
    LogInfo: MessageTypeDefinition<_builder_LogInfo, _builder_LogInfo__Output>
    LogsRequest: MessageTypeDefinition<_builder_LogsRequest, _builder_LogsRequest__Output>
    LogsResponse: MessageTypeDefinition<_builder_LogsResponse, _builder_LogsResponse__Output>
    ResolveBaseImageRequest: MessageTypeDefinition<_builder_ResolveBaseImageRequest, _builder_ResolveBaseImageRequest__Output>
    ResolveBaseImageResponse: MessageTypeDefinition<_builder_ResolveBaseImageResponse, _builder_ResolveBaseImageResponse__Output>
    ResolveWorkspaceImageRequest: MessageTypeDefinition<_builder_ResolveWorkspaceImageRequest, _builder_ResolveWorkspaceImageRequest__Output>
    ResolveWorkspaceImageResponse: MessageTypeDefinition<_builder_ResolveWorkspaceImageResponse, _builder_ResolveWorkspaceImageResponse__Output>
  }
  contentservice: {
    CloneTargetMode: EnumTypeDefinition
    CompositeInitializer: MessageTypeDefinition<_contentservice_CompositeInitializer, _contentservice_CompositeInitializer__Output>
    EmptyInitializer: MessageTypeDefinition<_contentservice_EmptyInitializer, _contentservice_EmptyInitializer__Output>
    FileDownloadInitializer: MessageTypeDefinition<_contentservice_FileDownloadInitializer, _contentservice_FileDownloadInitializer__Output>
    FromBackupInitializer: MessageTypeDefinition<_contentservice_FromBackupInitializer, _contentservice_FromBackupInitializer__Output>
    GitAuthMethod: EnumTypeDefinition
    GitConfig: MessageTypeDefinition<_contentservice_GitConfig, _contentservice_GitConfig__Output>
    GitInitializer: MessageTypeDefinition<_contentservice_GitInitializer, _contentservice_GitInitializer__Output>
    PrebuildInitializer: MessageTypeDefinition<_contentservice_PrebuildInitializer, _contentservice_PrebuildInitializer__Output>
    SnapshotInitializer: MessageTypeDefinition<_contentservice_SnapshotInitializer, _contentservice_SnapshotInitializer__Output>
    WorkspaceInitializer: MessageTypeDefinition<_contentservice_WorkspaceInitializer, _contentservice_WorkspaceInitializer__Output>
  }
}

