// Original file: src/api/proto/subassembly.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { CreateSubassemblyRequest as _builder_CreateSubassemblyRequest, CreateSubassemblyRequest__Output as _builder_CreateSubassemblyRequest__Output } from '../builder/CreateSubassemblyRequest.js';
import type { CreateSubassemblyResponse as _builder_CreateSubassemblyResponse, CreateSubassemblyResponse__Output as _builder_CreateSubassemblyResponse__Output } from '../builder/CreateSubassemblyResponse.js';
import type { GetSubassemblyRequest as _builder_GetSubassemblyRequest, GetSubassemblyRequest__Output as _builder_GetSubassemblyRequest__Output } from '../builder/GetSubassemblyRequest.js';
import type { GetSubassemblyResponse as _builder_GetSubassemblyResponse, GetSubassemblyResponse__Output as _builder_GetSubassemblyResponse__Output } from '../builder/GetSubassemblyResponse.js';

export interface SubassemblyServiceClient extends grpc.Client {
  /**
   * CreateSubassembly creates a subassembly from an OCI image.
   */
  CreateSubassembly(argument: _builder_CreateSubassemblyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  CreateSubassembly(argument: _builder_CreateSubassemblyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  CreateSubassembly(argument: _builder_CreateSubassemblyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  CreateSubassembly(argument: _builder_CreateSubassemblyRequest, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * CreateSubassembly creates a subassembly from an OCI image.
   */
  createSubassembly(argument: _builder_CreateSubassemblyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  createSubassembly(argument: _builder_CreateSubassemblyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  createSubassembly(argument: _builder_CreateSubassemblyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  createSubassembly(argument: _builder_CreateSubassemblyRequest, callback: grpc.requestCallback<_builder_CreateSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * GetSubassembly returns the status and URL of a subassembly.
   */
  GetSubassembly(argument: _builder_GetSubassemblyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  GetSubassembly(argument: _builder_GetSubassemblyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  GetSubassembly(argument: _builder_GetSubassemblyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  GetSubassembly(argument: _builder_GetSubassemblyRequest, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  /**
   * GetSubassembly returns the status and URL of a subassembly.
   */
  getSubassembly(argument: _builder_GetSubassemblyRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  getSubassembly(argument: _builder_GetSubassemblyRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  getSubassembly(argument: _builder_GetSubassemblyRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  getSubassembly(argument: _builder_GetSubassemblyRequest, callback: grpc.requestCallback<_builder_GetSubassemblyResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface SubassemblyServiceHandlers extends grpc.UntypedServiceImplementation {
  /**
   * CreateSubassembly creates a subassembly from an OCI image.
   */
  CreateSubassembly: grpc.handleUnaryCall<_builder_CreateSubassemblyRequest__Output, _builder_CreateSubassemblyResponse>;
  
  /**
   * GetSubassembly returns the status and URL of a subassembly.
   */
  GetSubassembly: grpc.handleUnaryCall<_builder_GetSubassemblyRequest__Output, _builder_GetSubassemblyResponse>;
  
}

export interface SubassemblyServiceDefinition extends grpc.ServiceDefinition {
  CreateSubassembly: MethodDefinition<_builder_CreateSubassemblyRequest, _builder_CreateSubassemblyResponse, _builder_CreateSubassemblyRequest__Output, _builder_CreateSubassemblyResponse__Output>
  GetSubassembly: MethodDefinition<_builder_GetSubassemblyRequest, _builder_GetSubassemblyResponse, _builder_GetSubassemblyRequest__Output, _builder_GetSubassemblyResponse__Output>
}
