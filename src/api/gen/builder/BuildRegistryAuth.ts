// Original file: src/api/proto/imgbuilder.proto

import type { BuildRegistryAuthTotal as _builder_BuildRegistryAuthTotal, BuildRegistryAuthTotal__Output as _builder_BuildRegistryAuthTotal__Output } from '../builder/BuildRegistryAuthTotal.js';
import type { BuildRegistryAuthSelective as _builder_BuildRegistryAuthSelective, BuildRegistryAuthSelective__Output as _builder_BuildRegistryAuthSelective__Output } from '../builder/BuildRegistryAuthSelective.js';

export interface BuildRegistryAuth {
  'total'?: (_builder_BuildRegistryAuthTotal | null);
  'selective'?: (_builder_BuildRegistryAuthSelective | null);
  'additional'?: ({[key: string]: string});
  'mode'?: "total"|"selective";
}

export interface BuildRegistryAuth__Output {
  'total'?: (_builder_BuildRegistryAuthTotal__Output | null);
  'selective'?: (_builder_BuildRegistryAuthSelective__Output | null);
  'additional': ({[key: string]: string});
  'mode'?: "total"|"selective";
}
