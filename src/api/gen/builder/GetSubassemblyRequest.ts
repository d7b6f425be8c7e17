// Original file: src/api/proto/subassembly.proto


export interface GetSubassemblyRequest {
  'oci_reference'?: (string);
}

export interface GetSubassemblyRequest__Output {
  'oci_reference': (string);
}
