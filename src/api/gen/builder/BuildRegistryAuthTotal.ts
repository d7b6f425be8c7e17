// Original file: src/api/proto/imgbuilder.proto


export interface BuildRegistryAuthTotal {
  'allow_all'?: (boolean);
}

export interface BuildRegistryAuthTotal__Output {
  'allow_all': (boolean);
}
