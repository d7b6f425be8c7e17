// The public surface of src/layers: deterministic tar, compression, safe extraction,
// whiteouts, flatten and image validation. Other modules import from here, never from the files.
export {
  UnsafeArchiveError,
  ArchiveLimitError,
  InvalidArchiveError,
  CompressionError,
  LayerSourceError,
  ImageValidationError,
  type UnsafeReason,
  type ArchiveLimitName,
  type ValidationProblem,
} from './errors.js';
export {
  WHITEOUT_PREFIX,
  OPAQUE_WHITEOUT,
  WHITEOUT_META_PREFIX,
  whiteoutPath,
  opaqueWhiteoutPath,
  comparePaths,
  normalizeArchivePath,
  isNormalizedPath,
  splitPath,
  type LayerEntry,
  type LayerEntryType,
  type LayerSource,
} from './entry.js';
export {
  directorySource,
  normalizeEntries,
  type DirectorySourceOptions,
  type NormalizeOptions,
  type MtimePolicy,
  type Owner,
  type OwnerMapper,
} from './source.js';
export { tarChunks, type TarWriteOptions } from './tar-writer.js';
export { readTar, DEFAULT_ARCHIVE_LIMITS, type ArchiveLimits, type TarEntry, type TarHeader, type TarReadOptions } from './tar-reader.js';
export {
  COMPRESSION_DEFAULTS,
  compressor,
  decompress,
  decompressor,
  defaultWorkers,
  sniffCompression,
  type CompressorOptions,
} from './compression.js';
export { GzipEncoder, GZIP_BLOCK_SIZE, type GzipEncoderOptions } from './gzip.js';
export { closeDeflateWorkers } from './deflate-pool.js';
export { buildLayer, buildLayerFile, layerDescriptor, type BuildLayerOptions, type BuiltLayer } from './build.js';
export {
  applyEntries,
  extractLayer,
  applyLayers,
  openLayerInput,
  ExtractError,
  type ExtractOptions,
  type ExtractResult,
  type LayerInput,
} from './extract.js';
export { flattenLayers, type FlattenOptions, type FlattenedLayers } from './flatten.js';
export { validateImage, type ValidateImageOptions, type ValidationReport } from './validate.js';
export { appendLayers, type AppendLayer, type AppendOptions, type AppendResult } from './append.js';
