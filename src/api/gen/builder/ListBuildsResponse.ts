// Original file: src/api/proto/imgbuilder.proto

import type { BuildInfo as _builder_BuildInfo, BuildInfo__Output as _builder_BuildInfo__Output } from '../builder/BuildInfo.js';

export interface ListBuildsResponse {
  'builds'?: (_builder_BuildInfo)[];
}

export interface ListBuildsResponse__Output {
  'builds': (_builder_BuildInfo__Output)[];
}
