// Original file: src/api/proto/content-service-api/initializer.proto

import type { CloneTargetMode as _contentservice_CloneTargetMode, CloneTargetMode__Output as _contentservice_CloneTargetMode__Output } from '../contentservice/CloneTargetMode.js';
import type { GitConfig as _contentservice_GitConfig, GitConfig__Output as _contentservice_GitConfig__Output } from '../contentservice/GitConfig.js';

export interface GitInitializer {
  'remote_uri'?: (string);
  'upstream_Remote_uri'?: (string);
  'target_mode'?: (_contentservice_CloneTargetMode);
  'clone_taget'?: (string);
  /**
   * path relative to the workspace root
   */
  'checkout_location'?: (string);
  'config'?: (_contentservice_GitConfig | null);
  /**
   * shallow (depth 1) unless set
   */
  'full_clone'?: (boolean);
}

export interface GitInitializer__Output {
  'remote_uri': (string);
  'upstream_Remote_uri': (string);
  'target_mode': (_contentservice_CloneTargetMode__Output);
  'clone_taget': (string);
  /**
   * path relative to the workspace root
   */
  'checkout_location': (string);
  'config': (_contentservice_GitConfig__Output | null);
  /**
   * shallow (depth 1) unless set
   */
  'full_clone': (boolean);
}
