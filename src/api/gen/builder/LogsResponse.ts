// Original file: src/api/proto/imgbuilder.proto


export interface LogsResponse {
  'content'?: (Buffer | Uint8Array | string);
}

export interface LogsResponse__Output {
  'content': (Buffer);
}
