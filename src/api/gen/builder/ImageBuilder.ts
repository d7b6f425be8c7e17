// Original file: src/api/proto/imgbuilder.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { BuildRequest as _builder_BuildRequest, BuildRequest__Output as _builder_BuildRequest__Output } from '../builder/BuildRequest.js';
import type { BuildResponse as _builder_BuildResponse, BuildResponse__Output as _builder_BuildResponse__Output } from '../builder/BuildResponse.js';
import type { ListBuildsRequest as _builder_ListBuildsRequest, ListBuildsRequest__Output as _builder_ListBuildsRequest__Output } from '../builder/ListBuildsRequest.js';
import type { ListBuildsResponse as _builder_ListBuildsResponse, ListBuildsResponse__Output as _builder_ListBuildsResponse__Output } from '../builder/ListBuildsResponse.js';
import type { LogsRequest as _builder_LogsRequest, LogsRequest__Output as _builder_LogsRequest__Output } from '../builder/LogsRequest.js';
import type { LogsResponse as _builder_LogsResponse, LogsResponse__Output as _builder_LogsResponse__Output } from '../builder/LogsResponse.js';
import type { ResolveBaseImageRequest as _builder_ResolveBaseImageRequest, ResolveBaseImageRequest__Output as _builder_ResolveBaseImageRequest__Output } from '../builder/ResolveBaseImageRequest.js';
import type { ResolveBaseImageResponse as _builder_ResolveBaseImageResponse, ResolveBaseImageResponse__Output as _builder_ResolveBaseImageResponse__Output } from '../builder/ResolveBaseImageResponse.js';
import type { ResolveWorkspaceImageRequest as _builder_ResolveWorkspaceImageRequest, ResolveWorkspaceImageRequest__Output as _builder_ResolveWorkspaceImageRequest__Output } from '../builder/ResolveWorkspaceImageRequest.js';
import type { ResolveWorkspaceImageResponse as _builder_ResolveWorkspaceImageResponse, ResolveWorkspaceImageResponse__Output as _builder_ResolveWorkspaceImageResponse__Output } from '../builder/ResolveWorkspaceImageResponse.js';

export interface ImageBuilderClient extends grpc.Client {
  /**
   * Build initiates the build of a Docker image using a build configuration. If a build of this
   * configuration is already ongoing no new build will be started.
   */
  Build(argument: _builder_BuildRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_BuildResponse__Output>;
  Build(argument: _builder_BuildRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_BuildResponse__Output>;
  /**
   * Build initiates the build of a Docker image using a build configuration. If a build of this
   * configuration is already ongoing no new build will be started.
   */
  build(argument: _builder_BuildRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_BuildResponse__Output>;
  build(argument: _builder_BuildRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_BuildResponse__Output>;
  
  /**
   * ListBuilds returns a list of currently running builds
   */
  ListBuilds(argument: _builder_ListBuildsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  ListBuilds(argument: _builder_ListBuildsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  ListBuilds(argument: _builder_ListBuildsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  ListBuilds(argument: _builder_ListBuildsRequest, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  /**
   * ListBuilds returns a list of currently running builds
   */
  listBuilds(argument: _builder_ListBuildsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  listBuilds(argument: _builder_ListBuildsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  listBuilds(argument: _builder_ListBuildsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  listBuilds(argument: _builder_ListBuildsRequest, callback: grpc.requestCallback<_builder_ListBuildsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Logs listens to the build output of an ongoing Docker build identified build the build ID
   */
  Logs(argument: _builder_LogsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_LogsResponse__Output>;
  Logs(argument: _builder_LogsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_LogsResponse__Output>;
  /**
   * Logs listens to the build output of an ongoing Docker build identified build the build ID
   */
  logs(argument: _builder_LogsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_LogsResponse__Output>;
  logs(argument: _builder_LogsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_builder_LogsResponse__Output>;
  
  /**
   * ResolveBaseImage returns the "digest" form of a Docker image tag thereby making it absolute.
   */
  ResolveBaseImage(argument: _builder_ResolveBaseImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  ResolveBaseImage(argument: _builder_ResolveBaseImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  ResolveBaseImage(argument: _builder_ResolveBaseImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  ResolveBaseImage(argument: _builder_ResolveBaseImageRequest, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  /**
   * ResolveBaseImage returns the "digest" form of a Docker image tag thereby making it absolute.
   */
  resolveBaseImage(argument: _builder_ResolveBaseImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  resolveBaseImage(argument: _builder_ResolveBaseImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  resolveBaseImage(argument: _builder_ResolveBaseImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  resolveBaseImage(argument: _builder_ResolveBaseImageRequest, callback: grpc.requestCallback<_builder_ResolveBaseImageResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * ResolveWorkspaceImage returns information about a build configuration without actually attempting to build anything.
   */
  ResolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  ResolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  ResolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  ResolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  /**
   * ResolveWorkspaceImage returns information about a build configuration without actually attempting to build anything.
   */
  resolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  resolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  resolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  resolveWorkspaceImage(argument: _builder_ResolveWorkspaceImageRequest, callback: grpc.requestCallback<_builder_ResolveWorkspaceImageResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface ImageBuilderHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Build initiates the build of a Docker image using a build configuration. If a build of this
   * configuration is already ongoing no new build will be started.
   */
  Build: grpc.handleServerStreamingCall<_builder_BuildRequest__Output, _builder_BuildResponse>;
  
  /**
   * ListBuilds returns a list of currently running builds
   */
  ListBuilds: grpc.handleUnaryCall<_builder_ListBuildsRequest__Output, _builder_ListBuildsResponse>;
  
  /**
   * Logs listens to the build output of an ongoing Docker build identified build the build ID
   */
  Logs: grpc.handleServerStreamingCall<_builder_LogsRequest__Output, _builder_LogsResponse>;
  
  /**
   * ResolveBaseImage returns the "digest" form of a Docker image tag thereby making it absolute.
   */
  ResolveBaseImage: grpc.handleUnaryCall<_builder_ResolveBaseImageRequest__Output, _builder_ResolveBaseImageResponse>;
  
  /**
   * ResolveWorkspaceImage returns information about a build configuration without actually attempting to build anything.
   */
  ResolveWorkspaceImage: grpc.handleUnaryCall<_builder_ResolveWorkspaceImageRequest__Output, _builder_ResolveWorkspaceImageResponse>;
  
}

export interface ImageBuilderDefinition extends grpc.ServiceDefinition {
  Build: MethodDefinition<_builder_BuildRequest, _builder_BuildResponse, _builder_BuildRequest__Output, _builder_BuildResponse__Output>
  ListBuilds: MethodDefinition<_builder_ListBuildsRequest, _builder_ListBuildsResponse, _builder_ListBuildsRequest__Output, _builder_ListBuildsResponse__Output>
  Logs: MethodDefinition<_builder_LogsRequest, _builder_LogsResponse, _builder_LogsRequest__Output, _builder_LogsResponse__Output>
  ResolveBaseImage: MethodDefinition<_builder_ResolveBaseImageRequest, _builder_ResolveBaseImageResponse, _builder_ResolveBaseImageRequest__Output, _builder_ResolveBaseImageResponse__Output>
  ResolveWorkspaceImage: MethodDefinition<_builder_ResolveWorkspaceImageRequest, _builder_ResolveWorkspaceImageResponse, _builder_ResolveWorkspaceImageRequest__Output, _builder_ResolveWorkspaceImageResponse__Output>
}
