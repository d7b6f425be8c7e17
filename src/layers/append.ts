import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_PLATFORM,
  copyGraph,
  scratchConfig,
  serializeConfig,
  serializeManifest,
  timestampFromEpoch,
  withLayers,
  type Descriptor,
  type LoadedImage,
  type Platform,
  type ReadOnlyStorage,
  type Storage,
  type Compression,
  isDockerMediaType,
  toOciLayerMediaType,
} from '../oci/index.js';
import { buildLayerFile, layerDescriptor, type BuiltLayer } from './build.js';
import type { LayerSource } from './entry.js';

export interface AppendLayer {
  readonly source: LayerSource;
  /** The history entry's `created_by`. */
  readonly createdBy: string;
}

export interface AppendOptions {
  /** The image to build on, and the store its blobs come from; omitted means `scratch`. */
  readonly base?: { readonly image: LoadedImage; readonly store: ReadOnlyStorage } | undefined;
  readonly layers: readonly AppendLayer[];
  /** Where the new blobs, config and manifest go (tagging is the caller's next step). */
  readonly target: Storage;
  /** The platform of a scratch image. Default linux/amd64. */
  readonly platform?: Platform | undefined;
  readonly compression?: Compression | undefined;
  readonly level?: number | undefined;
  readonly workers?: number | undefined;
  /** Sets the config's and history's `created` and the layers' mtimes. Default 0. */
  readonly sourceDateEpoch?: number | undefined;
  /**
   * For a registry target: repositories of the same registry that may hold a base layer, to
   * mount it from instead of moving its bytes.
   */
  readonly mountFrom?: ((layer: Descriptor) => string | readonly string[] | undefined) | undefined;
  /** Scratch space for blobs on their way into `target`. Default: the OS temp dir. */
  readonly tempDir?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface AppendResult {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly BuiltLayer[];
}

/**
 * go-containerregistry's `mutate.Append` as one verb: builds one layer per source on top of a
 * base (or scratch), writes the blobs, then the config, then the manifest into `target`, in that
 * order, so the target never holds a manifest whose blobs it lacks. The base's layers are copied
 * into `target` only when it does not have them already.
 */
export async function appendLayers(options: AppendOptions): Promise<AppendResult> {
  const { target, signal } = options;
  const epoch = options.sourceDateEpoch ?? 0;
  const created = timestampFromEpoch(epoch);
  const work = await mkdtemp(join(options.tempDir ?? tmpdir(), 'stevedore-append-'));
  try {
    const base = options.base;
    if (base !== undefined) {
      const copyOptions = { ...(signal === undefined ? {} : { signal }), ...(options.mountFrom === undefined ? {} : { mountFrom: options.mountFrom }) };
      for (const layer of base.image.manifest.value.layers) await copyGraph(base.store, target, layer, copyOptions);
    }

    // Keep the base's manifest family when Docker's can express the new layers (gzip only);
    // otherwise the image becomes OCI, base layers relabelled (same bytes, OCI media type).
    const compression = options.compression ?? 'gzip';
    const family = base !== undefined && isDockerMediaType(base.image.manifest.mediaType) && compression === 'gzip' ? 'docker' : 'oci';

    const built: BuiltLayer[] = [];
    for (const layer of options.layers) {
      const file = join(work, randomBytes(8).toString('hex'));
      const result = await buildLayerFile(layer.source, file, {
        compression,
        mediaTypeFamily: family,
        level: options.level,
        workers: options.workers,
        signal,
      });
      const descriptor = layerDescriptor(result);
      await target.push(descriptor, () => createReadStream(file), signal === undefined ? {} : { signal });
      await rm(file, { force: true });
      built.push(result);
    }

    const start = base?.image.config.value ?? scratchConfig(options.platform ?? DEFAULT_PLATFORM, created);
    const config = withLayers(
      start,
      built.map((layer, i) => ({ diffId: layer.diffId, history: { created, created_by: options.layers[i]!.createdBy } })),
      created,
    );
    const configDoc = serializeConfig(config, family);
    await target.push(configDoc.descriptor, configDoc.bytes, signal === undefined ? {} : { signal });

    const baseLayers = (base?.image.manifest.value.layers ?? []).map((l) => (family === 'oci' ? { ...l, mediaType: toOciLayerMediaType(l.mediaType) } : l));
    const manifestDoc = serializeManifest(configDoc.descriptor, [...baseLayers, ...built.map(layerDescriptor)], { family });
    await target.push(manifestDoc.descriptor, manifestDoc.bytes, signal === undefined ? {} : { signal });
    return { manifest: manifestDoc.descriptor, config: configDoc.descriptor, layers: built };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
