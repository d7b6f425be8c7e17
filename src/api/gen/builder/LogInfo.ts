// Original file: src/api/proto/imgbuilder.proto


export interface LogInfo {
  'url'?: (string);
  'headers'?: ({[key: string]: string});
}

export interface LogInfo__Output {
  'url': (string);
  'headers': ({[key: string]: string});
}
