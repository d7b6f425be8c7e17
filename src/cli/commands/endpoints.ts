import { resolve as resolvePath } from 'node:path';
import {
  OciLayout,
  apiHost,
  formatReference,
  parseLayoutReference,
  parseReference,
  type Descriptor,
  type Reference,
  type RegistryClientPool,
  type Storage,
  type Target,
} from '../../index.js';
import { UsageError } from '../command.js';

/**
 * Where an image comes from or goes to on the command line, as `skopeo` spells it: an OCI
 * layout `oci:DIR[:NAME]` or a registry reference `[docker://]REF`.
 */
export type Endpoint =
  | { readonly kind: 'layout'; readonly dir: string; readonly tag?: string }
  | { readonly kind: 'registry'; readonly reference: Reference };

export function parseEndpoint(input: string, cwd: string, role: string): Endpoint {
  if (input.startsWith('oci:')) {
    const ref = parseLayoutReference(input);
    return { kind: 'layout', dir: resolvePath(cwd, ref.dir), ...(ref.tag === undefined ? {} : { tag: ref.tag }) };
  }
  const rest = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest) || /^(oci-archive|docker-archive|dir|containers-storage):/.test(rest)) {
    throw new UsageError(`unsupported ${role} ${JSON.stringify(input)}: use oci:DIR[:NAME] or a registry reference`);
  }
  return { kind: 'registry', reference: parseReference(rest) };
}

export function describeEndpoint(endpoint: Endpoint): string {
  return endpoint.kind === 'layout' ? `oci:${endpoint.dir}${endpoint.tag === undefined ? '' : `:${endpoint.tag}`}` : formatReference(endpoint.reference);
}

export async function openEndpoint(endpoint: Endpoint, pool: RegistryClientPool, create: boolean): Promise<Target & Storage> {
  if (endpoint.kind === 'layout') return OciLayout.open(endpoint.dir, { create });
  return pool.repository(endpoint.reference);
}

/** The descriptor an endpoint names: its digest or tag, or a layout's only image. */
export async function resolveEndpoint(endpoint: Endpoint, store: Target, options: { signal?: AbortSignal } = {}): Promise<Descriptor> {
  if (endpoint.kind === 'registry') return store.resolve(endpoint.reference.digest ?? endpoint.reference.tag ?? 'latest', options);
  const layout = store as OciLayout;
  return endpoint.tag === undefined ? layout.resolveOnly(options) : layout.resolve(endpoint.tag, options);
}

/**
 * For a copy between two repositories of one registry, the source repository to mount blobs
 * from; undefined otherwise.
 */
export function mountSource(source: Endpoint | undefined, destination: Endpoint): string | undefined {
  if (source?.kind !== 'registry' || destination.kind !== 'registry') return undefined;
  if (apiHost(source.reference.registry) !== apiHost(destination.reference.registry)) return undefined;
  return source.reference.repository === destination.reference.repository ? undefined : source.reference.repository;
}
