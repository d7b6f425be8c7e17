// Original file: src/api/proto/imgbuilder.proto


export interface ListBuildsRequest {
}

export interface ListBuildsRequest__Output {
}
