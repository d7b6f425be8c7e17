// The public surface of src/subassembly: an image squashed into one reusable, content-addressed
// layer file (a subassembly), the tracker that creates and stores them, and the squashed image
// `stevedore squash` writes. Other modules import from here, never from the files.
export { SubassemblyError, isSubassemblyError, subassemblyErrorCode, toSubassemblyError, type SubassemblyErrorCode } from './errors.js';
export { SUBASSEMBLY_MANIFEST_MEDIA_TYPE, encodeSubassemblyManifest, subassemblyManifestSchema, type SubassemblyManifest } from './manifest.js';
export {
  createSubassembly,
  resolveSquashSource,
  squashImage,
  type CreateSubassemblyOptions,
  type ResolvedSquashSource,
  type ResolveSquashSourceOptions,
  type SquashOptions,
  type SquashResult,
  type SquashSource,
} from './squash.js';
export { squashedImage, pushSquashedImage, type SquashedImage, type SquashedImageOptions, type PushSquashedImageOptions } from './image.js';
export { SubassemblyDirectory, type SubassemblyPhase, type SubassemblyRecord, type FileCheck, type StoredState } from './store.js';
export { SubassemblyManager, SUBASSEMBLY_DEFAULTS, type SubassemblyManagerOptions, type SubassemblyStatus } from './manager.js';
