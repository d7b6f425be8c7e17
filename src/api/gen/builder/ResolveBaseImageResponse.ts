// Original file: src/api/proto/imgbuilder.proto


export interface ResolveBaseImageResponse {
  'ref'?: (string);
}

export interface ResolveBaseImageResponse__Output {
  'ref': (string);
}
