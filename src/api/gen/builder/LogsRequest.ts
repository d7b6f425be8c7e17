// Original file: src/api/proto/imgbuilder.proto


export interface LogsRequest {
  'build_ref'?: (string);
  'censored'?: (boolean);
  'build_id'?: (string);
}

export interface LogsRequest__Output {
  'build_ref': (string);
  'censored': (boolean);
  'build_id': (string);
}
