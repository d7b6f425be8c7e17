// Original file: src/api/proto/imgbuilder.proto


export interface BuildSourceReference {
  'ref'?: (string);
}

export interface BuildSourceReference__Output {
  'ref': (string);
}
