// Original file: src/api/proto/content-service-api/initializer.proto

export const CloneTargetMode = {
  REMOTE_HEAD: 'REMOTE_HEAD',
  REMOTE_COMMIT: 'REMOTE_COMMIT',
  REMOTE_BRANCH: 'REMOTE_BRANCH',
  LOCAL_BRANCH: 'LOCAL_BRANCH',
} as const;

export type CloneTargetMode =
  | 'REMOTE_HEAD'
  | 0
  | 'REMOTE_COMMIT'
  | 1
  | 'REMOTE_BRANCH'
  | 2
  | 'LOCAL_BRANCH'
  | 3

export type CloneTargetMode__Output = typeof CloneTargetMode[keyof typeof CloneTargetMode]
