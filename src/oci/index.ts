// The public surface of src/oci. Other modules import from here, never from the files.
export * from './errors.js';
export * from './digest.js';
export * from './mediatypes.js';
export * from './schemas.js';
export * from './document.js';
export * from './store.js';
export * from './reference.js';
export * from './platform.js';
export * from './content.js';
export * from './memory.js';
export * from './layout.js';
export { syncDirectory, writeFileAtomic, type WriteFileAtomicOptions } from './files.js';
export * from './copy.js';
export * from './image.js';
export * from './load.js';
