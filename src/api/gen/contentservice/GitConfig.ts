// Original file: src/api/proto/content-service-api/initializer.proto

import type { GitAuthMethod as _contentservice_GitAuthMethod, GitAuthMethod__Output as _contentservice_GitAuthMethod__Output } from '../contentservice/GitAuthMethod.js';

export interface GitConfig {
  'custom_config'?: ({[key: string]: string});
  'authentication'?: (_contentservice_GitAuthMethod);
  'auth_user'?: (string);
  'auth_password'?: (string);
  'auth_ots'?: (string);
}

export interface GitConfig__Output {
  'custom_config': ({[key: string]: string});
  'authentication': (_contentservice_GitAuthMethod__Output);
  'auth_user': (string);
  'auth_password': (string);
  'auth_ots': (string);
}
