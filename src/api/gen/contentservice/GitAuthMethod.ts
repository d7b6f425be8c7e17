// Original file: src/api/proto/content-service-api/initializer.proto

export const GitAuthMethod = {
  NO_AUTH: 'NO_AUTH',
  BASIC_AUTH: 'BASIC_AUTH',
  BASIC_AUTH_OTS: 'BASIC_AUTH_OTS',
} as const;

export type GitAuthMethod =
  | 'NO_AUTH'
  | 0
  | 'BASIC_AUTH'
  | 1
  | 'BASIC_AUTH_OTS'
  | 2

export type GitAuthMethod__Output = typeof GitAuthMethod[keyof typeof GitAuthMethod]
