// Original file: src/api/proto/imgbuilder.proto

import type { BuildStatus as _builder_BuildStatus, BuildStatus__Output as _builder_BuildStatus__Output } from '../builder/BuildStatus.js';
import type { LogInfo as _builder_LogInfo, LogInfo__Output as _builder_LogInfo__Output } from '../builder/LogInfo.js';
import type { Long } from '@grpc/proto-loader';

export interface BuildInfo {
  'ref'?: (string);
  'status'?: (_builder_BuildStatus);
  'started_at'?: (number | string | Long);
  'base_ref'?: (string);
  'build_id'?: (string);
  'log_info'?: (_builder_LogInfo | null);
}

export interface BuildInfo__Output {
  'ref': (string);
  'status': (_builder_BuildStatus__Output);
  'started_at': (string);
  'base_ref': (string);
  'build_id': (string);
  'log_info': (_builder_LogInfo__Output | null);
}
