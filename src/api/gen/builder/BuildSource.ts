// Original file: src/api/proto/imgbuilder.proto

import type { BuildSourceReference as _builder_BuildSourceReference, BuildSourceReference__Output as _builder_BuildSourceReference__Output } from '../builder/BuildSourceReference.js';
import type { BuildSourceDockerfile as _builder_BuildSourceDockerfile, BuildSourceDockerfile__Output as _builder_BuildSourceDockerfile__Output } from '../builder/BuildSourceDockerfile.js';

export interface BuildSource {
  'ref'?: (_builder_BuildSourceReference | null);
  'file'?: (_builder_BuildSourceDockerfile | null);
  'from'?: "ref"|"file";
}

export interface BuildSource__Output {
  'ref'?: (_builder_BuildSourceReference__Output | null);
  'file'?: (_builder_BuildSourceDockerfile__Output | null);
  'from'?: "ref"|"file";
}
