// Original file: src/api/proto/imgbuilder.proto

import type { BuildStatus as _builder_BuildStatus, BuildStatus__Output as _builder_BuildStatus__Output } from '../builder/BuildStatus.js';

export interface ResolveWorkspaceImageResponse {
  'ref'?: (string);
  'status'?: (_builder_BuildStatus);
  'base_ref'?: (string);
}

export interface ResolveWorkspaceImageResponse__Output {
  'ref': (string);
  'status': (_builder_BuildStatus__Output);
  'base_ref': (string);
}
