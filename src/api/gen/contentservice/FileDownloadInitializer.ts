// Original file: src/api/proto/content-service-api/initializer.proto


export interface _contentservice_FileDownloadInitializer_FileInfo {
  'url'?: (string);
  /**
   * file_path is relative to the target_location and includes the file name
   */
  'file_path'?: (string);
  /**
   * digest (OCI form) of the file's content, verified after download
   */
  'digest'?: (string);
}

export interface _contentservice_FileDownloadInitializer_FileInfo__Output {
  'url': (string);
  /**
   * file_path is relative to the target_location and includes the file name
   */
  'file_path': (string);
  /**
   * digest (OCI form) of the file's content, verified after download
   */
  'digest': (string);
}

export interface FileDownloadInitializer {
  'files'?: (_contentservice_FileDownloadInitializer_FileInfo)[];
  'target_location'?: (string);
}

export interface FileDownloadInitializer__Output {
  'files': (_contentservice_FileDownloadInitializer_FileInfo__Output)[];
  'target_location': (string);
}
