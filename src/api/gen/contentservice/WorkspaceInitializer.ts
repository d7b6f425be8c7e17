// Original file: src/api/proto/content-service-api/initializer.proto

import type { EmptyInitializer as _contentservice_EmptyInitializer, EmptyInitializer__Output as _contentservice_EmptyInitializer__Output } from '../contentservice/EmptyInitializer.js';
import type { GitInitializer as _contentservice_GitInitializer, GitInitializer__Output as _contentservice_GitInitializer__Output } from '../contentservice/GitInitializer.js';
import type { SnapshotInitializer as _contentservice_SnapshotInitializer, SnapshotInitializer__Output as _contentservice_SnapshotInitializer__Output } from '../contentservice/SnapshotInitializer.js';
import type { PrebuildInitializer as _contentservice_PrebuildInitializer, PrebuildInitializer__Output as _contentservice_PrebuildInitializer__Output } from '../contentservice/PrebuildInitializer.js';
import type { CompositeInitializer as _contentservice_CompositeInitializer, CompositeInitializer__Output as _contentservice_CompositeInitializer__Output } from '../contentservice/CompositeInitializer.js';
import type { FileDownloadInitializer as _contentservice_FileDownloadInitializer, FileDownloadInitializer__Output as _contentservice_FileDownloadInitializer__Output } from '../contentservice/FileDownloadInitializer.js';
import type { FromBackupInitializer as _contentservice_FromBackupInitializer, FromBackupInitializer__Output as _contentservice_FromBackupInitializer__Output } from '../contentservice/FromBackupInitializer.js';

export interface WorkspaceInitializer {
  'empty'?: (_contentservice_EmptyInitializer | null);
  'git'?: (_contentservice_GitInitializer | null);
  'snapshot'?: (_contentservice_SnapshotInitializer | null);
  'prebuild'?: (_contentservice_PrebuildInitializer | null);
  'composite'?: (_contentservice_CompositeInitializer | null);
  'download'?: (_contentservice_FileDownloadInitializer | null);
  'backup'?: (_contentservice_FromBackupInitializer | null);
  'spec'?: "empty"|"git"|"snapshot"|"prebuild"|"composite"|"download"|"backup";
}

export interface WorkspaceInitializer__Output {
  'empty'?: (_contentservice_EmptyInitializer__Output | null);
  'git'?: (_contentservice_GitInitializer__Output | null);
  'snapshot'?: (_contentservice_SnapshotInitializer__Output | null);
  'prebuild'?: (_contentservice_PrebuildInitializer__Output | null);
  'composite'?: (_contentservice_CompositeInitializer__Output | null);
  'download'?: (_contentservice_FileDownloadInitializer__Output | null);
  'backup'?: (_contentservice_FromBackupInitializer__Output | null);
  'spec'?: "empty"|"git"|"snapshot"|"prebuild"|"composite"|"download"|"backup";
}
