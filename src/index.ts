// The public barrel of Stevedore: the library's whole API. The CLI and the gRPC adapter import
// from here and nowhere else.
export * from './errors.js';
export * from './oci/index.js';
export * from './dockerfile/index.js';
export * from './layers/index.js';
export * from './registry/index.js';
export * from './build/index.js';
export * from './subassembly/index.js';
export * from './service/index.js';
