// Original file: src/api/proto/content-service-api/initializer.proto


export interface SnapshotInitializer {
  'snapshot'?: (string);
  'from_volume_snapshot'?: (boolean);
}

export interface SnapshotInitializer__Output {
  'snapshot': (string);
  'from_volume_snapshot': (boolean);
}
