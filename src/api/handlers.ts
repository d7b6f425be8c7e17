// The handlers of builder.ImageBuilder and builder.SubassemblyService: each decodes its request,
// calls one library method and encodes the answer. Dedup, censoring, reference hashing, the
// registry-auth policy and build tracking all live in the library (ImageBuilderService,
// SubassemblyManager), so the CLI and embedders get the same behaviour.
import { ServiceError, type ImageBuilderService, type SubassemblyManager } from '../index.js';
import type { CallFactory } from './calls.js';
import { decodeAuth, decodeBuildRequest, decodeSource, encodeBuildUpdate, encodeInfo, encodeSubassemblyStatus } from './codec.js';
import type { ImageBuilderHandlers } from './gen/builder/ImageBuilder.js';
import type { SubassemblyServiceHandlers } from './gen/builder/SubassemblyService.js';

async function* mapIterable<T, U>(source: AsyncIterable<T>, fn: (value: T) => U): AsyncGenerator<U> {
  for await (const value of source) yield fn(value);
}

/** An empty string is proto3's "not set". */
function optional(value: string): string | undefined {
  return value === '' ? undefined : value;
}

export function imageBuilderHandlers(service: ImageBuilderService, calls: CallFactory): ImageBuilderHandlers {
  return {
    ResolveBaseImage: calls.unary('ResolveBaseImage', async (request, signal) => {
      const resolved = await service.resolveBaseImage({ ref: request.ref, auth: decodeAuth(request.auth), useRetryClient: request.use_retry_client }, signal);
      return { ref: resolved.ref };
    }),

    ResolveWorkspaceImage: calls.unary('ResolveWorkspaceImage', async (request, signal) => {
      const resolved = await service.resolveWorkspaceImage(
        { source: decodeSource(request.source), auth: decodeAuth(request.auth), useRetryClient: request.use_retry_client },
        signal,
      );
      return { ref: resolved.ref, base_ref: resolved.baseRef, status: resolved.status };
    }),

    Build: calls.serverStream('Build', (request, signal) => mapIterable(service.build(decodeBuildRequest(request), signal), encodeBuildUpdate)),

    Logs: calls.serverStream('Logs', (request, signal) =>
      mapIterable(service.logs({ buildRef: optional(request.build_ref), buildId: optional(request.build_id), censored: request.censored }, signal), (chunk) => ({
        content: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      })),
    ),

    ListBuilds: calls.unary('ListBuilds', async () => ({ builds: service.listBuilds().map(encodeInfo) })),
  };
}

/** Without a configured store there is nothing to create: say which keys turn it on. */
function notConfigured(): never {
  throw new ServiceError('UNIMPLEMENTED', 'subassemblies are not enabled on this server: set stevedore.subassembly.directory or stevedore.subassembly.repository in its configuration');
}

export function subassemblyHandlers(manager: SubassemblyManager | undefined, calls: CallFactory): SubassemblyServiceHandlers {
  return {
    CreateSubassembly: calls.unary('CreateSubassembly', async (request, signal) => {
      if (manager === undefined) notConfigured();
      return { status: encodeSubassemblyStatus(await manager.create(request.oci_reference, signal)) };
    }),

    GetSubassembly: calls.unary('GetSubassembly', async (request, signal) => {
      if (manager === undefined) notConfigured();
      return { status: encodeSubassemblyStatus(await manager.get(request.oci_reference, signal)) };
    }),
  };
}
