// Original file: src/api/proto/imgbuilder.proto


export interface BuildRegistryAuthSelective {
  'allow_baserep'?: (boolean);
  'allow_workspacerep'?: (boolean);
  'any_of'?: (string)[];
}

export interface BuildRegistryAuthSelective__Output {
  'allow_baserep': (boolean);
  'allow_workspacerep': (boolean);
  'any_of': (string)[];
}
