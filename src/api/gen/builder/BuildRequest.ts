// Original file: src/api/proto/imgbuilder.proto

import type { BuildSource as _builder_BuildSource, BuildSource__Output as _builder_BuildSource__Output } from '../builder/BuildSource.js';
import type { BuildRegistryAuth as _builder_BuildRegistryAuth, BuildRegistryAuth__Output as _builder_BuildRegistryAuth__Output } from '../builder/BuildRegistryAuth.js';

export interface BuildRequest {
  'source'?: (_builder_BuildSource | null);
  'auth'?: (_builder_BuildRegistryAuth | null);
  'force_rebuild'?: (boolean);
  'triggered_by'?: (string);
  'supervisor_ref'?: (string);
  'base_image_name_resolved'?: (string);
  'use_retry_client'?: (boolean);
}

export interface BuildRequest__Output {
  'source': (_builder_BuildSource__Output | null);
  'auth': (_builder_BuildRegistryAuth__Output | null);
  'force_rebuild': (boolean);
  'triggered_by': (string);
  'supervisor_ref': (string);
  'base_image_name_resolved': (string);
  'use_retry_client': (boolean);
}
