import { fetchAll, fetchManifest } from './content.js';
import { parseImageConfig, type ParsedDocument } from './document.js';
import { InvalidDocumentError, NotFoundError } from './errors.js';
import { formatPlatform, selectManifest } from './platform.js';
import type { Descriptor, ImageConfig, ImageManifest, Platform } from './schemas.js';
import type { OperationOptions, ReadOnlyStorage, ReadOnlyTarget } from './store.js';

/** An image manifest and its config, each with the exact bytes it was read from. */
export interface LoadedImage {
  readonly descriptor: Descriptor;
  readonly manifest: ParsedDocument<ImageManifest>;
  readonly config: ParsedDocument<ImageConfig>;
}

export interface LoadImageOptions extends OperationOptions {
  /** The platform to select when the descriptor names an index. */
  readonly platform: Platform;
}

/**
 * Reads the image a descriptor names from a store: an index is resolved to its child for
 * `platform`, then the manifest and config are fetched, verified and parsed.
 */
export async function loadImage(store: ReadOnlyStorage, descriptor: Descriptor, options: LoadImageOptions): Promise<LoadedImage> {
  let desc = descriptor;
  let parsed = await fetchManifest(store, desc, options);
  if (parsed.kind === 'index') {
    const child = selectManifest(parsed.value, options.platform);
    if (child === undefined) {
      const offered = parsed.value.manifests.map((m) => (m.platform ? formatPlatform(m.platform) : '(no platform)')).join(', ');
      throw new NotFoundError(`a manifest for platform ${formatPlatform(options.platform)} in index ${desc.digest} (it has: ${offered || 'nothing'})`);
    }
    desc = child;
    parsed = await fetchManifest(store, desc, options);
    if (parsed.kind === 'index') throw new InvalidDocumentError('index', `${descriptor.digest} nests another index for ${formatPlatform(options.platform)}`);
  }
  const manifest = parsed;
  const configBytes = await fetchAll(store, manifest.value.config, options);
  const config = parseImageConfig(configBytes, manifest.value.config);
  return { descriptor: desc, manifest, config };
}

/** `loadImage` by tag or digest string, through the store's resolver. */
export async function loadImageByReference(store: ReadOnlyTarget, reference: string, options: LoadImageOptions): Promise<LoadedImage> {
  return loadImage(store, await store.resolve(reference, options), options);
}
