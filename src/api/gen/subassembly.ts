import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { CreateSubassemblyRequest as _builder_CreateSubassemblyRequest, CreateSubassemblyRequest__Output as _builder_CreateSubassemblyRequest__Output } from './builder/CreateSubassemblyRequest.js';
import type { CreateSubassemblyResponse as _builder_CreateSubassemblyResponse, CreateSubassemblyResponse__Output as _builder_CreateSubassemblyResponse__Output } from './builder/CreateSubassemblyResponse.js';
import type { GetSubassemblyRequest as _builder_GetSubassemblyRequest, GetSubassemblyRequest__Output as _builder_GetSubassemblyRequest__Output } from './builder/GetSubassemblyRequest.js';
import type { GetSubassemblyResponse as _builder_GetSubassemblyResponse, GetSubassemblyResponse__Output as _builder_GetSubassemblyResponse__Output } from './builder/GetSubassemblyResponse.js';
import type { SubassemblyServiceClient as _builder_SubassemblyServiceClient, SubassemblyServiceDefinition as _builder_SubassemblyServiceDefinition } from './builder/SubassemblyService.js';
import type { SubassemblyStatus as _builder_SubassemblyStatus, SubassemblyStatus__Output as _builder_SubassemblyStatus__Output } from './builder/SubassemblyStatus.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  builder: {
    CreateSubassemblyRequest: MessageTypeDefinition<_builder_CreateSubassemblyRequest, _builder_CreateSubassemblyRequest__Output>
    CreateSubassemblyResponse: MessageTypeDefinition<_builder_CreateSubassemblyResponse, _builder_CreateSubassemblyResponse__Output>
    GetSubassemblyRequest: MessageTypeDefinition<_builder_GetSubassemblyRequest, _builder_GetSubassemblyRequest__Output>
    GetSubassemblyResponse: MessageTypeDefinition<_builder_GetSubassemblyResponse, _builder_GetSubassemblyResponse__Output>
    SubassemblyPhase: EnumTypeDefinition
    SubassemblyService: SubtypeConstructor<typeof grpc.Client, _builder_SubassemblyServiceClient> & { service: _builder_SubassemblyServiceDefinition }
    SubassemblyStatus: MessageTypeDefinition<_builder_SubassemblyStatus, _builder_SubassemblyStatus__Output>
  }
}

