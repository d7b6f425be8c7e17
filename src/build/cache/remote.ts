import { MAX_DOCUMENT_SIZE, OCI, digestOf, formatReference, readAll, type Descriptor, type Fetcher, type Reference } from '../../oci/index.js';
import { isNotFoundError, type RegistryClientPool, type RegistryRepository } from '../../registry/index.js';
import { CACHE_ARTIFACT_TYPE, CACHE_ENTRY_MEDIA_TYPE, parseCacheEntry, type CacheEntry } from './entry.js';

/**
 * The registry cache (`--cache-to REF`, `--cache-from REF`): each entry is an OCI image manifest
 * in the cache repository, tagged with the key's hex, whose config blob is the entry (JSON) and
 * whose one layer, for a layer step, is the layer's blob itself.
 *
 * One manifest per key rather than one index of every key: a lookup is one manifest GET of a
 * known tag (no list that grows with the cache to download first), concurrent builds exporting
 * to the same repository never race on a shared document (a tag is written whole or not at all),
 * and a layer blob in the cache repository is an ordinary blob of a manifest, so the registry
 * keeps it, pushes of the image mount it from there, and garbage collection sees it referenced.
 * The cost is one tag per step, which registries handle as they handle any tag.
 *
 * Only entries whose layer is a blob are exported (the layers of the image, as BuildKit's
 * default `mode=min`): the layers of stages the image does not include only exist unpacked.
 */

/** An entry found in a registry cache, and the repository its layer blob can be read from. */
export interface RemoteHit {
  readonly entry: CacheEntry;
  readonly repository: RegistryRepository;
}

/** An entry to export, with where its layer blob can be read. */
export interface ExportItem {
  readonly entry: CacheEntry;
  readonly blobs: Fetcher;
}

export class RegistryCache {
  readonly #from: readonly RegistryRepository[];
  readonly #to: RegistryRepository | undefined;
  readonly #toName: string | undefined;

  constructor(pool: RegistryClientPool, from: readonly Reference[], to: Reference | undefined) {
    this.#from = from.map((ref) => pool.repository(ref));
    this.#to = to === undefined ? undefined : pool.repository(to);
    this.#toName = to === undefined ? undefined : formatReference(to);
  }

  get importing(): boolean {
    return this.#from.length > 0;
  }

  get exportTarget(): string | undefined {
    return this.#toName;
  }

  /** The entry of `key` in the first cache repository that has it. */
  async get(key: string, signal: AbortSignal): Promise<RemoteHit | undefined> {
    for (const repository of this.#from) {
      let manifest;
      try {
        manifest = await repository.fetchManifest(key, { signal });
      } catch (err) {
        if (isNotFoundError(err)) continue;
        throw err;
      }
      if (manifest.manifest.kind !== 'image') continue;
      const { config, layers } = manifest.manifest.value;
      if (config.mediaType !== CACHE_ENTRY_MEDIA_TYPE || config.size > MAX_DOCUMENT_SIZE) continue;
      const bytes = await readAll(await repository.fetch(config, { signal }), MAX_DOCUMENT_SIZE, `cache entry ${key}`);
      const entry = parseCacheEntry(bytes, key);
      if (entry === undefined) continue;
      if (entry.result.kind === 'unpacked') continue;
      if (entry.result.kind === 'blob' && layers[0]?.digest !== entry.result.descriptor.digest) continue;
      return { entry, repository };
    }
    return undefined;
  }

  /** Pushes entries (layer blob, entry, manifest tagged with the key); returns how many. */
  async export(items: readonly ExportItem[], signal: AbortSignal): Promise<number> {
    const to = this.#to;
    if (to === undefined) return 0;
    let exported = 0;
    for (const { entry, blobs } of items) {
      if (entry.result.kind === 'unpacked') continue;
      const layers: Descriptor[] = [];
      if (entry.result.kind === 'blob') {
        const layer = entry.result.descriptor;
        await to.pushBlob(layer, () => blobs.fetch(layer, { signal }), { signal });
        layers.push({ mediaType: layer.mediaType, digest: layer.digest, size: layer.size });
      }
      const entryBytes = Buffer.from(JSON.stringify(entry));
      const config: Descriptor = { mediaType: CACHE_ENTRY_MEDIA_TYPE, digest: digestOf(entryBytes), size: entryBytes.byteLength };
      await to.pushBlob(config, entryBytes, { signal });
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI.manifest,
          artifactType: CACHE_ARTIFACT_TYPE,
          config,
          layers,
        }),
      );
      await to.pushManifest(manifest, OCI.manifest, entry.key, { signal });
      exported++;
    }
    return exported;
  }
}
