// Original file: src/api/proto/subassembly.proto

import type { SubassemblyPhase as _builder_SubassemblyPhase, SubassemblyPhase__Output as _builder_SubassemblyPhase__Output } from '../builder/SubassemblyPhase.js';

export interface SubassemblyStatus {
  'phase'?: (_builder_SubassemblyPhase);
  /**
   * details the state
   */
  'message'?: (string);
  /**
   * digest of the subassembly file; only set when AVAILABLE
   */
  'digest'?: (string);
  /**
   * URL the subassembly can be downloaded from; only set when AVAILABLE
   */
  'url'?: (string);
  /**
   * describes the requirements of the subassembly; only set when AVAILABLE
   */
  'manifest'?: (Buffer | Uint8Array | string);
}

export interface SubassemblyStatus__Output {
  'phase': (_builder_SubassemblyPhase__Output);
  /**
   * details the state
   */
  'message': (string);
  /**
   * digest of the subassembly file; only set when AVAILABLE
   */
  'digest': (string);
  /**
   * URL the subassembly can be downloaded from; only set when AVAILABLE
   */
  'url': (string);
  /**
   * describes the requirements of the subassembly; only set when AVAILABLE
   */
  'manifest': (Buffer);
}
