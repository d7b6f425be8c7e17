// The wire contract at run time: the generated descriptor loaded into grpc-js service
// definitions. Nothing here reads a .proto file, so dist/ needs none beside it.
import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { fromJSON, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { descriptors } from './gen/descriptors.js';
import type { ImageBuilderDefinition } from './gen/builder/ImageBuilder.js';
import type { SubassemblyServiceDefinition } from './gen/builder/SubassemblyService.js';

/**
 * How messages become objects. These MUST match the flags scripts/gen-api.mjs passes to
 * proto-loader-gen-types, since the generated types describe exactly these objects: wire names
 * kept (`clone_taget`, `upstream_Remote_uri`), enums as their names, int64 as decimal strings,
 * defaults filled in, and each oneof's virtual field naming the member that is set.
 */
export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The package definition of builder.* and contentservice.* (also what reflection serves). */
export const packageDefinition: PackageDefinition = fromJSON(
  // protobufjs types its JSON descriptor more strictly than Root#toJSON writes it (`comment`
  // required on methods, no `keyType` on map fields); the object is exactly what toJSON produced.
  descriptors as unknown as Parameters<typeof fromJSON>[0],
  LOADER_OPTIONS,
);

const grpcObject = loadPackageDefinition(packageDefinition);
const builder = grpcObject['builder'] as GrpcObject;

function serviceOf(name: string): ServiceDefinition {
  const constructor = builder[name] as { service?: ServiceDefinition } | undefined;
  if (constructor?.service === undefined) throw new Error(`the generated descriptor lacks builder.${name}`);
  return constructor.service;
}

/** `builder.ImageBuilder`, typed by its generated definition. */
export const imageBuilderService = serviceOf('ImageBuilder') as ImageBuilderDefinition;
/** `builder.SubassemblyService`. */
export const subassemblyService = serviceOf('SubassemblyService') as SubassemblyServiceDefinition;

/** Fully-qualified service names, as health checks and reflection name them. */
export const IMAGE_BUILDER_SERVICE = 'builder.ImageBuilder';
export const SUBASSEMBLY_SERVICE = 'builder.SubassemblyService';
