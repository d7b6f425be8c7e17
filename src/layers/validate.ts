import { StevedoreError, throwIfAborted } from '../errors.js';
import {
  DOCKER,
  DigestMismatchError,
  Digester,
  NotFoundError,
  OCI,
  SizeMismatchError,
  fetchAll,
  isConfigMediaType,
  isIndexMediaType,
  isLayerMediaType,
  isManifestMediaType,
  isNondistributableLayer,
  layerCompression,
  parseImageConfig,
  parseManifestFor,
  type Descriptor,
  type Fetcher,
  type ImageConfig,
  type ImageManifest,
} from '../oci/index.js';
import { decompress } from './compression.js';
import { ImageValidationError, type ValidationProblem } from './errors.js';
import { readTar, type ArchiveLimits } from './tar-reader.js';

export interface ValidateImageOptions {
  /** Fetch every layer and check its size, digest and diffID. Default true. */
  readonly checkLayers?: boolean | undefined;
  /** Also read each layer's tar headers (a layer must be a well-formed tar). Default true. */
  readonly checkTar?: boolean | undefined;
  /** Caps for the tar check. Default `DEFAULT_ARCHIVE_LIMITS`. */
  readonly limits?: Partial<ArchiveLimits> | undefined;
  /** Layers checked at once. Default 2. */
  readonly concurrency?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** What a successful validation looked at. */
export interface ValidationReport {
  /** Image manifests validated (an index counts each child). */
  readonly manifests: number;
  /** Indexes validated. */
  readonly indexes: number;
  /** Layer blobs verified (each distinct digest once). */
  readonly layers: number;
}

/** Indexes of indexes are legal; this many levels is more than any real image uses. */
const MAX_INDEX_DEPTH = 8;

/** BuildKit's attestation manifests hang off an index next to the images they describe. */
const REFERENCE_TYPE = 'vnd.docker.reference.type';

interface LayerCheck {
  readonly problems: ValidationProblem[];
  readonly diffId: string | undefined;
}

/**
 * The invariant checker every test that produces an image calls (and a pull can call): fetches
 * the manifest `desc` names from `store` and checks, for an index, every child, and for an image
 * manifest:
 * - the document's size, digest, schema and declared media type;
 * - the config's media type (the manifest's family: OCI with OCI, Docker with Docker), size,
 *   digest and schema;
 * - every layer's media type (a known layer type of the manifest's family), then, streaming with
 *   flat memory, its size, digest, that it decompresses, that it is a well-formed tar, and its
 *   diffID against `rootfs.diff_ids`;
 * - as many diffIDs as layers, and as many non-empty history entries as layers when there is a
 *   history; the config's platform against the index's descriptor when the index gives one.
 *
 * A foreign or non-distributable layer missing from the store is not a problem (registries do
 * not hold them); when present it is checked like any other.
 *
 * All problems are collected (one bad layer does not hide another); if there is any,
 * `ImageValidationError` is thrown with the list, the first one in its message. Attestation
 * manifests of an index (BuildKit's `vnd.docker.reference.type`) get their blobs' digests checked
 * but are not held to image rules.
 */
export async function validateImage(store: Fetcher, desc: Descriptor, options: ValidateImageOptions = {}): Promise<ValidationReport> {
  const validator = new Validator(store, options);
  await validator.descriptor(desc);
  if (validator.problems.length > 0) throw new ImageValidationError(validator.problems);
  return { manifests: validator.manifests, indexes: validator.indexes, layers: validator.layerChecks.size };
}

class Validator {
  readonly problems: ValidationProblem[] = [];
  readonly layerChecks = new Map<string, Promise<LayerCheck>>();
  manifests = 0;
  indexes = 0;
  readonly #store: Fetcher;
  readonly #options: ValidateImageOptions;

  constructor(store: Fetcher, options: ValidateImageOptions) {
    this.#store = store;
    this.#options = options;
  }

  #problem(kind: string, digest: string, message: string): void {
    this.problems.push({ kind, digest, message });
  }

  /** Fetches a small document; a failure becomes a problem and `undefined`. */
  async #fetchDocument(desc: Descriptor, what: string): Promise<Uint8Array | undefined> {
    try {
      return await fetchAll(this.#store, desc, this.#signal());
    } catch (err) {
      this.#problem(kindOf(err, what), desc.digest, `${what} ${desc.digest}: ${messageOf(err)}`);
      return undefined;
    }
  }

  #signal(): { signal?: AbortSignal } {
    return this.#options.signal === undefined ? {} : { signal: this.#options.signal };
  }

  async descriptor(desc: Descriptor, depth = 0): Promise<void> {
    throwIfAborted(this.#options.signal);
    if (depth > MAX_INDEX_DEPTH) {
      this.#problem('index-depth', desc.digest, `indexes nested more than ${MAX_INDEX_DEPTH} deep`);
      return;
    }
    if (!isManifestMediaType(desc.mediaType)) {
      this.#problem('media-type', desc.digest, `${JSON.stringify(desc.mediaType)} is not an image manifest or index media type`);
      return;
    }
    const bytes = await this.#fetchDocument(desc, isIndexMediaType(desc.mediaType) ? 'index' : 'manifest');
    if (bytes === undefined) return;
    let parsed;
    try {
      parsed = parseManifestFor(bytes, desc);
    } catch (err) {
      this.#problem('manifest-schema', desc.digest, messageOf(err));
      return;
    }
    if (parsed.kind === 'index') {
      this.indexes++;
      const docker = desc.mediaType === DOCKER.manifestList;
      for (const child of parsed.value.manifests) {
        if (docker && child.mediaType !== DOCKER.manifest) {
          this.#problem('media-type-family', child.digest, `a Docker manifest list lists ${JSON.stringify(child.mediaType)}`);
        }
        await this.descriptor(child, depth + 1);
      }
      return;
    }
    this.manifests++;
    if (desc.annotations?.[REFERENCE_TYPE] !== undefined) {
      await this.#attestation(parsed.value);
      return;
    }
    await this.#image(desc, parsed.value);
  }

  async #attestation(manifest: ImageManifest): Promise<void> {
    for (const blob of [manifest.config, ...manifest.layers]) await this.#fetchDocument(blob, 'attestation blob');
  }

  async #image(desc: Descriptor, manifest: ImageManifest): Promise<void> {
    const oci = desc.mediaType === OCI.manifest;
    const familyConfig = oci ? OCI.config : DOCKER.config;
    const digest = desc.digest;
    if (manifest.config.mediaType !== familyConfig) {
      const reason = isConfigMediaType(manifest.config.mediaType) ? 'belongs to the other media type family' : 'is not an image config media type';
      this.#problem('config-media-type', digest, `config media type ${JSON.stringify(manifest.config.mediaType)} ${reason} (expected ${familyConfig})`);
    }
    manifest.layers.forEach((layer, i) => {
      if (!isLayerMediaType(layer.mediaType)) {
        this.#problem('layer-media-type', layer.digest, `layer ${i} has media type ${JSON.stringify(layer.mediaType)}, not a layer type`);
      } else if (layer.mediaType.startsWith('application/vnd.oci.') !== oci) {
        this.#problem('media-type-family', layer.digest, `layer ${i} media type ${JSON.stringify(layer.mediaType)} mixes families in a ${oci ? 'OCI' : 'Docker'} manifest`);
      }
    });

    const configBytes = await this.#fetchDocument(manifest.config, 'config');
    let config: ImageConfig | undefined;
    if (configBytes !== undefined) {
      try {
        config = parseImageConfig(configBytes).value;
      } catch (err) {
        this.#problem('config-schema', manifest.config.digest, messageOf(err));
      }
    }
    if (config !== undefined) this.#configConsistency(desc, manifest, config);

    if (this.#options.checkLayers === false) return;
    const checks = await this.#checkLayers(manifest.layers);
    checks.forEach((check, i) => {
      this.problems.push(...check.problems);
      const expected = config?.rootfs.diff_ids[i];
      if (check.diffId !== undefined && expected !== undefined && check.diffId !== expected) {
        this.#problem('diff-id', manifest.layers[i]!.digest, `layer ${i} has diffID ${check.diffId} but the config lists ${expected}`);
      }
    });
  }

  #configConsistency(desc: Descriptor, manifest: ImageManifest, config: ImageConfig): void {
    const digest = desc.digest;
    const diffIds = config.rootfs.diff_ids.length;
    if (diffIds !== manifest.layers.length) {
      this.#problem('layer-count', digest, `the manifest has ${manifest.layers.length} layers but the config lists ${diffIds} diffIDs`);
    }
    if (config.history !== undefined && config.history.length > 0) {
      const nonEmpty = config.history.filter((h) => h.empty_layer !== true).length;
      if (nonEmpty !== manifest.layers.length) {
        this.#problem('history-count', manifest.config.digest, `the history has ${nonEmpty} non-empty entries but the manifest has ${manifest.layers.length} layers`);
      }
    }
    // An index describes each child's platform in the child's descriptor.
    const platform = desc.platform;
    if (platform !== undefined) {
      const mismatch =
        platform.os !== config.os ||
        platform.architecture !== config.architecture ||
        (platform.variant !== undefined && config.variant !== undefined && platform.variant !== config.variant);
      if (mismatch) {
        const want = [platform.os, platform.architecture, platform.variant].filter(Boolean).join('/');
        const have = [config.os, config.architecture, config.variant].filter(Boolean).join('/');
        this.#problem('platform', digest, `the index says ${want} but the config says ${have}`);
      }
    }
  }

  async #checkLayers(layers: readonly Descriptor[]): Promise<LayerCheck[]> {
    const results: Promise<LayerCheck>[] = new Array(layers.length);
    const concurrency = Math.max(1, this.#options.concurrency ?? 2);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < layers.length) {
        const i = next++;
        const layer = layers[i]!;
        const key = `${layer.digest} ${layer.mediaType} ${layer.size}`;
        let check = this.layerChecks.get(key);
        if (check === undefined) {
          check = this.#checkLayer(layer, i);
          this.layerChecks.set(key, check);
        }
        results[i] = check;
        await check;
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, layers.length) }, worker));
    return Promise.all(results);
  }

  /** One streaming pass: count and hash the blob, decompress, hash (and parse) the tar. */
  async #checkLayer(layer: Descriptor, index: number): Promise<LayerCheck> {
    throwIfAborted(this.#options.signal);
    const problems: ValidationProblem[] = [];
    const compression = layerCompression(layer.mediaType);
    if (compression === undefined) return { problems, diffId: undefined };
    const blob = new Digester();
    const tar = new Digester();
    try {
      let stream;
      try {
        stream = await this.#store.fetch(layer, this.#signal());
      } catch (err) {
        // Foreign and non-distributable layers are legitimately absent from registries.
        if (err instanceof NotFoundError && isNondistributableLayer(layer.mediaType)) return { problems, diffId: undefined };
        throw err;
      }
      const counted = (async function* () {
        for await (const chunk of stream) {
          blob.update(chunk as Uint8Array);
          yield chunk as Uint8Array;
        }
      })();
      const hashed = (async function* () {
        for await (const chunk of decompress(counted, compression)) {
          tar.update(chunk);
          yield chunk;
        }
      })();
      if (this.#options.checkTar === false) await drain(hashed);
      else for await (const entry of readTar(hashed, { limits: this.#options.limits, signal: this.#options.signal })) await drain(entry.content);
    } catch (err) {
      problems.push({ kind: kindOf(err, 'layer'), digest: layer.digest, message: `layer ${index} (${layer.digest}): ${messageOf(err)}` });
      return { problems, diffId: undefined };
    }
    if (blob.size !== layer.size) {
      problems.push({ kind: 'layer-size', digest: layer.digest, message: `layer ${index} is ${blob.size} bytes but its descriptor says ${layer.size}` });
    } else if (blob.digest() !== layer.digest) {
      problems.push({ kind: 'layer-digest', digest: layer.digest, message: `layer ${index} hashes to ${blob.digest()}, not ${layer.digest}` });
    }
    return { problems, diffId: tar.digest() };
  }
}

async function drain(source: AsyncIterable<unknown>): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  for await (const _ of source);
}

/** The problem kind for an error met while fetching or reading `what`. */
function kindOf(err: unknown, what: string): string {
  const prefix = what === 'index' ? 'manifest' : what.replace(/ .*/, '');
  if (err instanceof NotFoundError) return `${prefix}-missing`;
  if (err instanceof DigestMismatchError) return `${prefix}-digest`;
  if (err instanceof SizeMismatchError) return `${prefix}-size`;
  if (err instanceof StevedoreError) {
    switch (err.code) {
      case 'INVALID_COMPRESSED_DATA':
        return `${prefix}-compression`;
      case 'INVALID_ARCHIVE':
      case 'ARCHIVE_LIMIT_EXCEEDED':
      case 'UNSAFE_ARCHIVE':
        return `${prefix}-tar`;
      case 'TOO_LARGE':
        return `${prefix}-size`;
      case 'ABORTED':
        throw err;
      default:
        return `${prefix}-invalid`;
    }
  }
  return `${prefix}-unreadable`;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
