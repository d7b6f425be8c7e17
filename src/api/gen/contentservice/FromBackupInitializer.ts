// Original file: src/api/proto/content-service-api/initializer.proto


export interface FromBackupInitializer {
  'checkout_location'?: (string);
  'from_volume_snapshot'?: (boolean);
}

export interface FromBackupInitializer__Output {
  'checkout_location': (string);
  'from_volume_snapshot': (boolean);
}
