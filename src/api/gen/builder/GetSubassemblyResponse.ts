// Original file: src/api/proto/subassembly.proto

import type { SubassemblyStatus as _builder_SubassemblyStatus, SubassemblyStatus__Output as _builder_SubassemblyStatus__Output } from '../builder/SubassemblyStatus.js';

export interface GetSubassemblyResponse {
  'status'?: (_builder_SubassemblyStatus | null);
}

export interface GetSubassemblyResponse__Output {
  'status': (_builder_SubassemblyStatus__Output | null);
}
