import { createReadStream } from 'node:fs';
import {
  copyGraph,
  scratchConfig,
  serializeConfig,
  serializeManifest,
  toOciLayerMediaType,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type LoadedImage,
  type OperationOptions,
  type ReadOnlyStorage,
  type SerializedDocument,
  type Storage,
} from '../oci/index.js';
import type { SquashResult } from './squash.js';

/** A squashed image as documents: its config and manifest, and the layers the manifest lists. */
export interface SquashedImage {
  readonly config: SerializedDocument;
  readonly manifest: SerializedDocument;
  /** Every layer, lowest first: the kept base layers, then the squashed one. */
  readonly layers: readonly Descriptor[];
}

export interface SquashedImageOptions {
  /**
   * `'full'` (the default): the source's whole config with the layers replaced (what
   * `stevedore squash` writes). `'consumer'`: only the platform and the runtime fields the
   * subassembly manifest names (Env, Entrypoint, Cmd, WorkingDir, User), as the registry copy of
   * a subassembly carries them.
   */
  readonly config?: 'full' | 'consumer' | undefined;
  /** The base the squash kept (`SquashOptions.base`), whose layers come first. */
  readonly base?: LoadedImage | undefined;
}

/**
 * The image a squash makes: the base's layers (if any) then the squashed layer, with the
 * source's config (its `created`, so the documents are as deterministic as the layer) and one
 * history entry for the squashed layer after the base's. Always an OCI manifest; Docker base
 * layers keep their bytes under the OCI media type.
 */
export function squashedImage(squashed: SquashResult, source: LoadedImage, options: SquashedImageOptions = {}): SquashedImage {
  const base = options.base;
  const original = source.config.value;
  const created = original.created;
  const start: ImageConfig =
    options.config === 'consumer'
      ? { ...scratchConfig({ os: original.os, architecture: original.architecture, ...(original.variant === undefined ? {} : { variant: original.variant }) }, created), config: { ...squashed.manifest.config } }
      : original;
  const own: HistoryEntry = {
    ...(created === undefined ? {} : { created }),
    created_by: `stevedore squash ${squashed.manifest.source.reference}`,
    comment: `${source.manifest.value.layers.length - squashed.keptLayers} layers of ${squashed.manifest.source.digest} squashed into one`,
  };
  // validateImage's rule: a history, when present, has one non-empty entry per layer. A base
  // without a history cannot tell which of its entries go with its layers, so there is none.
  const baseHistory = base === undefined ? [] : base.config.value.history;
  const history = baseHistory === undefined ? undefined : [...baseHistory, own];
  const { history: _replaced, ...rest } = start;
  const config: ImageConfig = {
    ...rest,
    rootfs: { type: 'layers', diff_ids: [...(base?.config.value.rootfs.diff_ids ?? []), squashed.diffId] },
    ...(history === undefined ? {} : { history }),
  };
  const configDoc = serializeConfig(config, 'oci');
  const layers = [...(base?.manifest.value.layers ?? []).map((l) => ({ mediaType: toOciLayerMediaType(l.mediaType), digest: l.digest, size: l.size })), squashed.layer];
  return { config: configDoc, manifest: serializeManifest(configDoc.descriptor, layers, { family: 'oci' }), layers };
}

export interface PushSquashedImageOptions extends OperationOptions {
  /** Where the base layers come from (required when the image keeps base layers). */
  readonly baseStore?: ReadOnlyStorage | undefined;
  /** For registry targets: repositories of the same registry that may hold a base layer. */
  readonly mountFrom?: ((layer: Descriptor) => string | readonly string[] | undefined) | undefined;
}

/**
 * Writes a squashed image into `target` in the order that never exposes a partial image: the
 * base layers (skipped where present), the squashed layer from its file, the config, then the
 * manifest. Tagging is the caller's next step. Returns the manifest's descriptor.
 */
export async function pushSquashedImage(target: Storage, image: SquashedImage, squashed: SquashResult, options: PushSquashedImageOptions = {}): Promise<Descriptor> {
  const signal = options.signal === undefined ? {} : { signal: options.signal };
  const kept = image.layers.slice(0, -1);
  if (kept.length > 0) {
    const store = options.baseStore;
    if (store === undefined) throw new TypeError('pushSquashedImage: the image keeps base layers, so options.baseStore is required');
    for (const layer of kept) await copyGraph(store, target, layer, { ...signal, ...(options.mountFrom === undefined ? {} : { mountFrom: options.mountFrom }) });
  }
  await target.push(squashed.layer, () => createReadStream(squashed.file), signal);
  await target.push(image.config.descriptor, image.config.bytes, signal);
  await target.push(image.manifest.descriptor, image.manifest.bytes, signal);
  return image.manifest.descriptor;
}
