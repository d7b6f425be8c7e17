import { randomBytes } from 'node:crypto';
import { applyEntries, layerDescriptor, type LayerSource } from '../layers/index.js';
import { digestOf, DOCKER, OCI, type Descriptor, type Digest } from '../oci/index.js';
import { BuildOptionsError } from './errors.js';
import type { LayerRecord, StepIdentity } from './events.js';
import type { LayerDir, StageLayer } from './rootfs.js';
import type { BuildRuntime } from './runtime.js';

/** Progress events at most this often per layer. */
const PROGRESS_INTERVAL_MS = 200;

/**
 * Archives and compresses a step's entries into a blob of the build's store, reporting
 * progress, and returns the layer as a stage layer and as a record for events and the result.
 */
export async function buildStepLayer(rt: BuildRuntime, identity: StepIdentity, source: LayerSource): Promise<{ layer: StageLayer; record: LayerRecord }> {
  let last = 0;
  const onProgress = (uncompressed: number): void => {
    const now = Date.now();
    if (now - last < PROGRESS_INTERVAL_MS) return;
    last = now;
    rt.emit({ type: 'layer-progress', time: now, ...identity, uncompressed, compressed: 0 });
  };
  const output = rt.isOutputStage(identity.stage);
  const upload = output && rt.compression !== 'none' ? rt.layerUpload() : undefined;
  const built = await rt.store.buildLayer(source, {
    onProgress,
    tap: upload?.tap,
    compression: output ? rt.compression : 'none',
    level: rt.compressionLevel,
    // Never in a manifest: an internal layer may use OCI's uncompressed type whatever the output's family.
    mediaTypeFamily: output ? rt.family : 'oci',
    signal: rt.signal,
  });
  const descriptor = layerDescriptor(built);
  upload?.built(descriptor);
  rt.emit({ type: 'layer-progress', time: Date.now(), ...identity, uncompressed: built.uncompressedSize, compressed: built.size });
  return {
    layer: { diffId: built.diffId, origin: 'built', blob: { descriptor, fetcher: rt.store.layout } },
    record: { descriptor, diffId: built.diffId, uncompressedSize: built.uncompressedSize },
  };
}

/**
 * For a stage the image does not include: the step's entries written straight into a private
 * directory of the build (context files copied by the kernel; no archive, no compression),
 * ready for the later stages that read them.
 */
export async function unpackStepLayer(rt: BuildRuntime, source: LayerSource, diffId: Digest): Promise<{ layer: StageLayer; dir: LayerDir; record: LayerRecord }> {
  const path = await rt.tempDir('layer-');
  const applied = await applyEntries(source, path, { signal: rt.signal });
  return {
    layer: { diffId, origin: 'built' },
    dir: { path, opaque: new Set() },
    record: { diffId, uncompressedSize: applied.size },
  };
}

/**
 * The name of a layer that only ever lives unpacked (no archive, hence no diffID), in the
 * stage's config (which no output holds) and in the rootfs cache. COPY, ADD and WORKDIR layers
 * are a function of their step's cache key, so they are named by it: a step made again (after
 * its directory was pruned) names the same directory, and the steps after it keep their keys.
 * A RUN's output is not (network, clocks): without a key, a random name.
 */
export function unpackedLayerId(stepKey?: string): Digest {
  return digestOf(stepKey === undefined ? randomBytes(32) : `stevedore unpacked layer ${stepKey}`);
}

/**
 * A base image's layer descriptor in the media-type family of the output manifest (the blob is
 * the same; only the name of its type differs between Docker and OCI manifests).
 */
export function convertLayerDescriptor(desc: Descriptor, family: 'oci' | 'docker'): Descriptor {
  const mediaType = convertLayerMediaType(desc.mediaType, family);
  return mediaType === desc.mediaType ? desc : { ...desc, mediaType };
}

function convertLayerMediaType(mediaType: string, family: 'oci' | 'docker'): string {
  if (family === 'oci') {
    if (mediaType === DOCKER.layerGzip) return OCI.layerGzip;
    if (mediaType === DOCKER.layerForeignGzip) return OCI.layerNondistributableGzip;
    return mediaType;
  }
  if (mediaType === OCI.layerGzip) return DOCKER.layerGzip;
  if (mediaType === OCI.layerNondistributableGzip) return DOCKER.layerForeignGzip;
  if (mediaType === DOCKER.layerGzip || mediaType === DOCKER.layerForeignGzip) return mediaType;
  throw new BuildOptionsError(`a Docker manifest cannot hold a ${mediaType} layer of the base image; build with OCI media types`);
}
