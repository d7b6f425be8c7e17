import type { Digest } from './digest.js';
import { digestOf } from './digest.js';
import { encodeDocument } from './document.js';
import { DOCKER, OCI } from './mediatypes.js';
import type { Descriptor, HistoryEntry, ImageConfig, ImageManifest, Platform } from './schemas.js';

/**
 * Pure operations on image documents (go-containerregistry's `mutate`, minus the I/O): start a
 * config, add layers and history to it, and serialise a config and its manifest. Every result is
 * a new object; nothing is mutated in place.
 */

/** An RFC 3339 timestamp for `SOURCE_DATE_EPOCH`-style seconds since the epoch. */
export function timestampFromEpoch(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** The config of an image with no layers (`FROM scratch`). */
export function scratchConfig(platform: Platform, created?: string): ImageConfig {
  return {
    ...(created === undefined ? {} : { created }),
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    ...(platform['os.version'] === undefined ? {} : { 'os.version': platform['os.version'] }),
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

export interface AddedLayer {
  /** The digest of the uncompressed tar: the config's `rootfs.diff_ids` entry. */
  readonly diffId: Digest;
  readonly history: HistoryEntry;
}

/** Adds layers (with one history entry each) on top of a config. */
export function withLayers(config: ImageConfig, layers: readonly AddedLayer[], created?: string): ImageConfig {
  return {
    ...config,
    ...(created === undefined ? {} : { created }),
    rootfs: { ...config.rootfs, type: 'layers', diff_ids: [...config.rootfs.diff_ids, ...layers.map((l) => l.diffId)] },
    history: [...(config.history ?? []), ...layers.map((l) => ({ ...l.history, empty_layer: undefined }))].map(dropUndefined),
  };
}

/** Adds a history entry for a step that changed only metadata (`empty_layer: true`). */
export function withEmptyLayerHistory(config: ImageConfig, history: HistoryEntry): ImageConfig {
  return { ...config, history: [...(config.history ?? []), { ...history, empty_layer: true }] };
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export interface SerializedDocument {
  readonly descriptor: Descriptor;
  readonly bytes: Uint8Array;
}

/** Serialises a config; the descriptor's media type follows the manifest family. */
export function serializeConfig(config: ImageConfig, family: 'oci' | 'docker' = 'oci'): SerializedDocument {
  const bytes = encodeDocument(config);
  return { bytes, descriptor: { mediaType: family === 'docker' ? DOCKER.config : OCI.config, digest: digestOf(bytes), size: bytes.byteLength } };
}

/** Serialises the image manifest for a config and its layers (in order, lowest first). */
export function serializeManifest(
  config: Descriptor,
  layers: readonly Descriptor[],
  options: { readonly family?: 'oci' | 'docker'; readonly annotations?: Readonly<Record<string, string>> } = {},
): SerializedDocument {
  const mediaType = options.family === 'docker' ? DOCKER.manifest : OCI.manifest;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}) })),
    ...(options.annotations && Object.keys(options.annotations).length > 0 ? { annotations: { ...options.annotations } } : {}),
  };
  const bytes = encodeDocument(manifest);
  return { bytes, descriptor: { mediaType, digest: digestOf(bytes), size: bytes.byteLength } };
}
