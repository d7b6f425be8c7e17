// Original file: src/api/proto/subassembly.proto


export interface CreateSubassemblyRequest {
  'oci_reference'?: (string);
}

export interface CreateSubassemblyRequest__Output {
  'oci_reference': (string);
}
