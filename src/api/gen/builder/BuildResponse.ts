// Original file: src/api/proto/imgbuilder.proto

import type { BuildStatus as _builder_BuildStatus, BuildStatus__Output as _builder_BuildStatus__Output } from '../builder/BuildStatus.js';
import type { BuildInfo as _builder_BuildInfo, BuildInfo__Output as _builder_BuildInfo__Output } from '../builder/BuildInfo.js';

export interface BuildResponse {
  /**
   * deprecated(cw): expect this field to go away in a future version.
   * it's redundant with the build info.
   */
  'ref'?: (string);
  /**
   * deprecated(cw): expect this field to go away in a future version.
   * it's redundant with the build info.
   */
  'status'?: (_builder_BuildStatus);
  'message'?: (string);
  'base_ref'?: (string);
  'info'?: (_builder_BuildInfo | null);
}

export interface BuildResponse__Output {
  /**
   * deprecated(cw): expect this field to go away in a future version.
   * it's redundant with the build info.
   */
  'ref': (string);
  /**
   * deprecated(cw): expect this field to go away in a future version.
   * it's redundant with the build info.
   */
  'status': (_builder_BuildStatus__Output);
  'message': (string);
  'base_ref': (string);
  'info': (_builder_BuildInfo__Output | null);
}
