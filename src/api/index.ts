// The gRPC + HTTP adapter over the library: `startServer(config)` is what `stevedore serve` runs.
// Only this module imports @grpc/*; it reaches the library through src/index.ts alone.
export { startServer, type StartServerOptions, type StevedoreServer } from './server.js';
export { grpcFailureOf, httpFailureOf, type GrpcFailure } from './status.js';
export { IMAGE_BUILDER_SERVICE, SUBASSEMBLY_SERVICE } from './protos.js';
export { ListenError } from './errors.js';
