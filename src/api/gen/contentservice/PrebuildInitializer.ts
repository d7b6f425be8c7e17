// Original file: src/api/proto/content-service-api/initializer.proto

import type { SnapshotInitializer as _contentservice_SnapshotInitializer, SnapshotInitializer__Output as _contentservice_SnapshotInitializer__Output } from '../contentservice/SnapshotInitializer.js';
import type { GitInitializer as _contentservice_GitInitializer, GitInitializer__Output as _contentservice_GitInitializer__Output } from '../contentservice/GitInitializer.js';

export interface PrebuildInitializer {
  'prebuild'?: (_contentservice_SnapshotInitializer | null);
  'git'?: (_contentservice_GitInitializer)[];
}

export interface PrebuildInitializer__Output {
  'prebuild': (_contentservice_SnapshotInitializer__Output | null);
  'git': (_contentservice_GitInitializer__Output)[];
}
