import { StevedoreError } from '../errors.js';
import {
  DEFAULT_PLATFORM,
  formatPlatform,
  InvalidDocumentError,
  parseReference,
  selectGitpodManifest,
  selectManifest,
  type Descriptor,
  type ImageIndex,
  type OperationOptions,
  type ParsedDocument,
  type ParsedManifest,
  type Platform,
  type Reference,
} from '../oci/index.js';
import type { ImageManifest } from '../oci/index.js';
import type { RegistryClientOptions } from './options.js';
import { RegistryClientPool } from './pool.js';

/** An index has no manifest for the platform asked for. */
export class PlatformNotFoundError extends StevedoreError {
  override name = 'PlatformNotFoundError';
  constructor(
    readonly reference: string,
    readonly platform: string,
    readonly available: readonly string[],
  ) {
    super(
      'PLATFORM_NOT_FOUND',
      `no manifest for platform ${platform} in ${reference}${available.length > 0 ? ` (it has ${available.join(', ')})` : ' (its entries name no platform)'}`,
    );
  }
}

export interface ResolveReferenceOptions extends OperationOptions {
  /** The platform to pick from an index. Default: linux/amd64. */
  readonly platform?: Platform | undefined;
  /**
   * How to pick: `platform` (normalised os/architecture/variant match, exact variant preferred),
   * or `gitpod` (mk3's rule: the first entry whose os-architecture is exactly linux-amd64).
   */
  readonly selection?: 'platform' | 'gitpod' | undefined;
  /** Clients to use (and keep open); otherwise a temporary pool with `clientOptions`. */
  readonly registries?: RegistryClientPool | undefined;
  readonly clientOptions?: RegistryClientOptions | undefined;
}

export interface ResolvedImage {
  /** The reference as asked, normalised. */
  readonly reference: Reference;
  /** `registry/repository@digest` of the selected image manifest (tag dropped). */
  readonly pinned: Reference;
  /** The selected image manifest's descriptor (with the index entry's platform, if any). */
  readonly descriptor: Descriptor;
  readonly manifest: ParsedDocument<ImageManifest>;
  /** The index the reference named, when it named one. */
  readonly index?: { readonly descriptor: Descriptor; readonly document: ParsedDocument<ImageIndex> };
}

/**
 * Resolves a reference to one image manifest: fetches what the tag or digest names (verified
 * against the digest), and for an index selects the child for the platform and fetches it. The
 * result is pinned by the image manifest's digest, as mk3's `ResolveBaseImage` returns.
 */
export async function resolveReference(input: Reference | string, options: ResolveReferenceOptions = {}): Promise<ResolvedImage> {
  const reference = typeof input === 'string' ? parseReference(input) : input;
  const pool = options.registries ?? new RegistryClientPool(options.clientOptions);
  try {
    const repository = pool.repository(reference);
    const signal = options.signal === undefined ? {} : { signal: options.signal };
    const target = reference.digest ?? reference.tag ?? 'latest';
    const top = await repository.fetchManifest(target, signal);
    const name = `${reference.registry}/${reference.repository}`;
    if (top.manifest.kind === 'image') {
      return {
        reference,
        pinned: pin(reference, top.descriptor.digest),
        descriptor: top.descriptor,
        manifest: imageDocument(top.manifest),
      };
    }
    const index = top.manifest;
    const platform = options.platform ?? DEFAULT_PLATFORM;
    const chosen = options.selection === 'gitpod' ? selectGitpodManifest(index.value) : selectManifest(index.value, platform);
    if (chosen === undefined) {
      const available = index.value.manifests.flatMap((m) => (m.platform === undefined ? [] : [formatPlatform(m.platform)]));
      throw new PlatformNotFoundError(`${name}@${top.descriptor.digest}`, options.selection === 'gitpod' ? 'linux-amd64' : formatPlatform(platform), available);
    }
    const child = await repository.fetchManifest(chosen.digest, signal);
    if (child.manifest.kind !== 'image') {
      throw new InvalidDocumentError(`index ${name}@${top.descriptor.digest}`, `its entry for ${formatPlatform(chosen.platform ?? platform)} is not an image manifest`);
    }
    if (child.descriptor.size !== chosen.size) {
      throw new InvalidDocumentError(`index ${name}@${top.descriptor.digest}`, `its entry ${chosen.digest} announces ${chosen.size} bytes, the registry has ${child.descriptor.size}`);
    }
    return {
      reference,
      pinned: pin(reference, chosen.digest),
      descriptor: { ...chosen, mediaType: child.descriptor.mediaType },
      manifest: imageDocument(child.manifest),
      index: { descriptor: top.descriptor, document: indexDocument(index) },
    };
  } finally {
    if (options.registries === undefined) await pool.close();
  }
}

function pin(reference: Reference, digest: Descriptor['digest']): Reference {
  return { registry: reference.registry, repository: reference.repository, digest };
}

function imageDocument(manifest: ParsedManifest & { kind: 'image' }): ParsedDocument<ImageManifest> {
  const { kind: _kind, ...document } = manifest;
  return document;
}

function indexDocument(manifest: ParsedManifest & { kind: 'index' }): ParsedDocument<ImageIndex> {
  const { kind: _kind, ...document } = manifest;
  return document;
}
