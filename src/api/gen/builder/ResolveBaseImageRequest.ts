// Original file: src/api/proto/imgbuilder.proto

import type { BuildRegistryAuth as _builder_BuildRegistryAuth, BuildRegistryAuth__Output as _builder_BuildRegistryAuth__Output } from '../builder/BuildRegistryAuth.js';

export interface ResolveBaseImageRequest {
  'ref'?: (string);
  'auth'?: (_builder_BuildRegistryAuth | null);
  'use_retry_client'?: (boolean);
}

export interface ResolveBaseImageRequest__Output {
  'ref': (string);
  'auth': (_builder_BuildRegistryAuth__Output | null);
  'use_retry_client': (boolean);
}
