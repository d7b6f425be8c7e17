// The public surface of src/oci. Other modules import from here, never from the files.
export * from './errors.js';
export * from './digest.js';
export * from './mediatypes.js';
export * from './schemas.js';
export * from './document.js';
export * from './store.js';
