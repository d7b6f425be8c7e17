import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DEFAULT_PLATFORM,
  Digester,
  DigestMismatchError,
  InvalidDocumentError,
  OCI,
  digestAlgorithm,
  digestHex,
  fetchAll,
  formatPlatform,
  formatReference,
  layerCompression,
  parseImageConfig,
  parseReference,
  type Compression,
  type Descriptor,
  type Digest,
  type LoadedImage,
  type Platform,
  type ReadOnlyStorage,
  type Reference,
} from '../oci/index.js';
import { buildLayerFile, decompress, flattenLayers, layerDescriptor, type LayerInput } from '../layers/index.js';
import { resolveReference, type RegistryClientPool, type RegistryRepository } from '../registry/index.js';
import { BaseMarkers } from './above-base.js';
import { SubassemblyError, toSubassemblyError } from './errors.js';
import { RequirementsRecorder, SUBASSEMBLY_MANIFEST_MEDIA_TYPE, consumerConfig, type SubassemblyManifest } from './manifest.js';

/** An image to squash: where its blobs come from, its manifest and config, and how to name it. */
export interface SquashSource {
  /** How the manifest's `source.reference` names it (a normalised reference, or `oci:DIR:TAG`). */
  readonly reference: string;
  readonly image: LoadedImage;
  readonly store: ReadOnlyStorage;
}

export interface SquashOptions {
  /** Keep these layers (a prefix of the source's, compared by diffID) and squash only the rest. */
  readonly base?: LoadedImage | undefined;
  /** Default `'gzip'`. */
  readonly compression?: Compression | undefined;
  /** Compression level (gzip 1–9, zstd 1–19); default the layers module's. */
  readonly level?: number | undefined;
  /** Scratch space: the flatten spool and the result file. */
  readonly workDir: string;
  readonly signal?: AbortSignal | undefined;
}

export interface SquashResult {
  readonly manifest: SubassemblyManifest;
  /** The layer file (in `workDir`, named by its digest's hex), hashed as it was written. */
  readonly file: string;
  readonly layer: Descriptor;
  readonly diffId: Digest;
  /** How many source layers were kept below the squashed one (the base's prefix); 0 without a base. */
  readonly keptLayers: number;
}

/**
 * Squashes the layers of an image (all of them, or those above `options.base`) into one
 * deterministic layer file: each layer is pulled once, checked against its digest and its diffID
 * while it streams, and merged top-down by `flattenLayers` (whiteouts and opaque directories
 * resolved, memory flat whatever the sizes); the merged tree is written sorted, with the
 * entries' own metadata, so an image always gives the same bytes, and two layerings of the
 * same tree give the same bytes too. Above a base, the layer keeps the whiteouts and opaque
 * markers that still act on the base (`BaseMarkers`), so base + layer = the image. Failures are
 * `SubassemblyError`s (or `AbortedError`).
 */
export async function squashImage(source: SquashSource, options: SquashOptions): Promise<SquashResult> {
  try {
    return await squash(source, options);
  } catch (err) {
    throw toSubassemblyError(err, `squash ${source.reference}`, source.reference);
  }
}

async function squash(source: SquashSource, options: SquashOptions): Promise<SquashResult> {
  const { image, store } = source;
  const { signal } = options;
  const layers = image.manifest.value.layers;
  const diffIds = image.config.value.rootfs.diff_ids;
  if (layers.length !== diffIds.length) {
    throw new InvalidDocumentError(`image ${image.descriptor.digest}`, `its manifest has ${layers.length} layers but its config lists ${diffIds.length} diffIDs`);
  }
  const kept = options.base === undefined ? 0 : basePrefixLength(source, options.base);

  // Above a base, what the squashed layers delete from it must survive the squash.
  const markers = options.base === undefined ? undefined : new BaseMarkers();
  const inputs = layers.slice(kept).map((desc, i) => verifiedLayer(store, desc, diffIds[kept + i]!, markers, signal));
  const flattened = await flattenLayers(inputs, { tempDir: options.workDir, signal });
  const unnamed = join(options.workDir, `squash-${randomBytes(8).toString('hex')}`);
  let recorder: RequirementsRecorder;
  let built;
  try {
    recorder = new RequirementsRecorder(markers === undefined ? flattened : await markers.aboveBase(flattened));
    built = await buildLayerFile(recorder, unnamed, { compression: options.compression ?? 'gzip', level: options.level, signal });
  } finally {
    await flattened.dispose();
  }
  const file = join(options.workDir, digestHex(built.digest));
  await rename(unnamed, file).catch(async (err: unknown) => {
    await rm(unnamed, { force: true });
    throw err;
  });

  const config = image.config.value;
  const platform = { os: config.os, architecture: config.architecture, ...(config.variant === undefined ? {} : { variant: config.variant }) };
  const manifest: SubassemblyManifest = {
    mediaType: SUBASSEMBLY_MANIFEST_MEDIA_TYPE,
    source: { reference: source.reference, digest: image.descriptor.digest, platform: formatPlatform(platform) },
    file: { mediaType: built.mediaType, digest: built.digest, size: built.size, diffId: built.diffId },
    config: consumerConfig(config.config),
    requirements: { ...platform, ...recorder.requirements() },
  };
  return { manifest, file, layer: layerDescriptor(built), diffId: built.diffId, keptLayers: kept };
}

/** How many of the source's layers the base accounts for; refuses a base that is not a prefix. */
function basePrefixLength(source: SquashSource, base: LoadedImage): number {
  const ours = source.image.config.value.rootfs.diff_ids;
  const theirs = base.config.value.rootfs.diff_ids;
  if (base.manifest.value.layers.length !== theirs.length) {
    throw new InvalidDocumentError(`base image ${base.descriptor.digest}`, `its manifest has ${base.manifest.value.layers.length} layers but its config lists ${theirs.length} diffIDs`);
  }
  const differs = theirs.findIndex((id, i) => ours[i] !== id);
  if (theirs.length > ours.length || differs >= 0) {
    const why =
      differs >= 0 && differs < ours.length
        ? `its layer ${differs + 1} has diffID ${theirs[differs]}, the image's has ${ours[differs]}`
        : `it has ${theirs.length} layers, the image only ${ours.length}`;
    throw new SubassemblyError('INVALID_REFERENCE', `${base.descriptor.digest} is not a base of ${source.reference}: ${why}`, { reference: source.reference });
  }
  return theirs.length;
}

/**
 * A layer for `flattenLayers`, opened when its turn comes: the blob as the store serves it
 * (verified against its digest at EOF), decompressed here so the tar bytes can be checked
 * against the config's diffID as well (and, above a base, scanned for markers). `flattenLayers`
 * reads every layer to its end, so the check always runs before the squash can succeed.
 */
function verifiedLayer(store: ReadOnlyStorage, desc: Descriptor, diffId: Digest, markers: BaseMarkers | undefined, signal: AbortSignal | undefined): LayerInput {
  const compression = layerCompression(desc.mediaType);
  if (compression === undefined) throw new InvalidDocumentError(`layer ${desc.digest}`, `${JSON.stringify(desc.mediaType)} is not a layer media type`);
  return {
    mediaType: OCI.layer,
    content: async function* () {
      const blob = await store.fetch(desc, signal === undefined ? {} : { signal });
      const digester = new Digester(digestAlgorithm(diffId));
      const tar = decompress(blob, compression);
      for await (const chunk of markers === undefined ? tar : markers.scan(tar)) {
        digester.update(chunk);
        yield chunk;
      }
      const actual = digester.digest();
      if (actual !== diffId) throw new DigestMismatchError(diffId, actual, `layer ${desc.digest} (uncompressed)`);
    },
  };
}

export interface ResolveSquashSourceOptions {
  readonly registries: RegistryClientPool;
  /** The platform to take from an index. Default linux/amd64. */
  readonly platform?: Platform | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** A registry image resolved to one manifest (an index to its child), before its config is read. */
export interface ResolvedManifest {
  readonly parsed: Reference;
  /** The reference, normalised. */
  readonly reference: string;
  readonly descriptor: Descriptor;
  readonly manifest: LoadedImage['manifest'];
  readonly store: RegistryRepository;
}

/** A registry image ready to squash: the reference resolved (an index to its child), its config fetched. */
export interface ResolvedSquashSource extends SquashSource {
  readonly parsed: Reference;
}

/**
 * Resolves a registry reference to the image manifest it names (an index → its child for the
 * platform), verified against its digest: what identifies a subassembly, for the price of one or
 * two manifest requests. Failures are `SubassemblyError`s: INVALID_REFERENCE, NOT_FOUND,
 * UNAUTHENTICATED, UNAVAILABLE.
 */
export async function resolveManifest(reference: string, options: ResolveSquashSourceOptions): Promise<ResolvedManifest> {
  try {
    const parsed = parseReference(reference);
    const resolved = await resolveReference(parsed, {
      registries: options.registries,
      platform: options.platform ?? DEFAULT_PLATFORM,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    return { parsed, reference: formatReference(parsed), descriptor: resolved.descriptor, manifest: resolved.manifest, store: options.registries.repository(parsed) };
  } catch (err) {
    throw toSubassemblyError(err, `resolve ${reference}`, reference);
  }
}

/** Fetches the config of a resolved manifest: the image is then ready to squash. */
export async function loadSource(resolved: ResolvedManifest, signal?: AbortSignal): Promise<ResolvedSquashSource> {
  try {
    const descriptor = resolved.manifest.value.config;
    const config = parseImageConfig(await fetchAll(resolved.store, descriptor, signal === undefined ? {} : { signal }), descriptor);
    return { parsed: resolved.parsed, reference: resolved.reference, image: { descriptor: resolved.descriptor, manifest: resolved.manifest, config }, store: resolved.store };
  } catch (err) {
    throw toSubassemblyError(err, `read the config of ${resolved.reference}`, resolved.reference);
  }
}

/** `resolveManifest`, then `loadSource`. */
export async function resolveSquashSource(reference: string, options: ResolveSquashSourceOptions): Promise<ResolvedSquashSource> {
  return await loadSource(await resolveManifest(reference, options), options.signal);
}

export interface CreateSubassemblyOptions {
  readonly registries: RegistryClientPool;
  /** Default linux/amd64. */
  readonly platform?: Platform | undefined;
  /** Squash only the layers above this base image's (its layers must be a prefix); default: all. */
  readonly aboveBase?: string | undefined;
  readonly compression?: Compression | undefined;
  readonly workDir: string;
  readonly signal?: AbortSignal | undefined;
}

/**
 * One squash of a registry image: resolve `reference` (and `aboveBase`), pull, apply the layers
 * into one deterministic layer file in `workDir`, and describe it in a subassembly manifest. The
 * building block of `SubassemblyManager` and `stevedore squash`.
 */
export async function createSubassembly(reference: string, options: CreateSubassemblyOptions): Promise<SquashResult> {
  const resolveOptions = { registries: options.registries, platform: options.platform, signal: options.signal };
  const source = await resolveSquashSource(reference, resolveOptions);
  const base = options.aboveBase === undefined ? undefined : (await resolveSquashSource(options.aboveBase, resolveOptions)).image;
  return await squashImage(source, { base, compression: options.compression, workDir: options.workDir, signal: options.signal });
}
