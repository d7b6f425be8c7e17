// Original file: src/api/proto/imgbuilder.proto

import type { WorkspaceInitializer as _contentservice_WorkspaceInitializer, WorkspaceInitializer__Output as _contentservice_WorkspaceInitializer__Output } from '../contentservice/WorkspaceInitializer.js';

export interface BuildSourceDockerfile {
  'source'?: (_contentservice_WorkspaceInitializer | null);
  'dockerfile_version'?: (string);
  'dockerfile_path'?: (string);
  'context_path'?: (string);
}

export interface BuildSourceDockerfile__Output {
  'source': (_contentservice_WorkspaceInitializer__Output | null);
  'dockerfile_version': (string);
  'dockerfile_path': (string);
  'context_path': (string);
}
