// Original file: src/api/proto/imgbuilder.proto

export const BuildStatus = {
  unknown: 'unknown',
  running: 'running',
  done_success: 'done_success',
  done_failure: 'done_failure',
} as const;

export type BuildStatus =
  | 'unknown'
  | 0
  | 'running'
  | 1
  | 'done_success'
  | 2
  | 'done_failure'
  | 3

export type BuildStatus__Output = typeof BuildStatus[keyof typeof BuildStatus]
