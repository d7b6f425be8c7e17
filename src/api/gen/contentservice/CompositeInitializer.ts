// Original file: src/api/proto/content-service-api/initializer.proto

import type { WorkspaceInitializer as _contentservice_WorkspaceInitializer, WorkspaceInitializer__Output as _contentservice_WorkspaceInitializer__Output } from '../contentservice/WorkspaceInitializer.js';

export interface CompositeInitializer {
  'initializer'?: (_contentservice_WorkspaceInitializer)[];
}

export interface CompositeInitializer__Output {
  'initializer': (_contentservice_WorkspaceInitializer__Output)[];
}
