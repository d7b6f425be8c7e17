// Original file: src/api/proto/content-service-api/initializer.proto


export interface EmptyInitializer {
}

export interface EmptyInitializer__Output {
}
