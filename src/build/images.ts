import { resolve as resolvePath } from 'node:path';
import {
  fetchAll,
  fetchManifest,
  formatPlatform,
  formatReference,
  isIndexMediaType,
  NotFoundError,
  OciLayout,
  parseImageConfig,
  parseLayoutReference,
  parseReference,
  selectManifest,
  type Descriptor,
  type Fetcher,
  type ImageConfig,
  type ImageManifest,
  type Platform,
} from '../oci/index.js';
import { PlatformNotFoundError, resolveReference, type RegistryClientPool } from '../registry/index.js';
import { BuildOptionsError } from './errors.js';

/**
 * Base images and `COPY --from=IMAGE` sources: a registry reference (resolved to one image
 * manifest for the stage's platform) or an OCI layout (`oci:DIR[:TAG]`), possibly through a
 * named context (`--build-context NAME=VALUE`). Only manifests and configs are read here; layers
 * are fetched when a step needs files, or streamed to an output that lacks them.
 */

export interface ResolvedImage {
  /** For messages and events: the normalised reference, or `oci:DIR:TAG`. */
  readonly name: string;
  /** The image manifest's descriptor. */
  readonly descriptor: Descriptor;
  readonly manifest: ImageManifest;
  readonly config: ImageConfig;
  /** Where its blobs are read. */
  readonly fetcher: Fetcher;
  /** For a registry image: where it lives, so an output on the same registry can mount its blobs. */
  readonly registry?: { readonly host: string; readonly repository: string } | undefined;
}

/** What a named context stands for. */
export type NamedContext =
  | { readonly kind: 'image'; readonly reference: string }
  | { readonly kind: 'layout'; readonly dir: string; readonly tag?: string | undefined }
  | { readonly kind: 'local'; readonly dir: string };

/** Parses `--build-context` values (see `BuildOptions.contexts`); `base` resolves relative directories. */
export function parseNamedContext(name: string, value: string, base: string): NamedContext {
  if (value.startsWith('docker-image://')) return { kind: 'image', reference: value.slice('docker-image://'.length) };
  if (value.startsWith('oci-layout://')) value = `oci:${value.slice('oci-layout://'.length)}`;
  if (value.startsWith('oci:')) {
    const ref = parseLayoutReference(value);
    return { kind: 'layout', dir: resolvePath(base, ref.dir), tag: ref.tag };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) throw new BuildOptionsError(`named context ${name}: unsupported value ${JSON.stringify(value)} (use docker-image://REF, oci:DIR[:TAG] or a directory)`);
  return { kind: 'local', dir: resolvePath(base, value) };
}

export interface ImageResolverOptions {
  readonly registries: RegistryClientPool;
  readonly contexts: ReadonlyMap<string, NamedContext>;
  readonly signal?: AbortSignal | undefined;
}

/** Resolves images once per (name, platform) for the whole build. */
export class ImageResolver {
  readonly #options: ImageResolverOptions;
  readonly #cache = new Map<string, Promise<ResolvedImage>>();

  constructor(options: ImageResolverOptions) {
    this.#options = options;
  }

  /** The named context `ref` stands for, by the name as written or its normalised form. */
  namedContext(ref: string, reference?: string): NamedContext | undefined {
    return this.#options.contexts.get(ref) ?? (reference === undefined ? undefined : this.#options.contexts.get(reference));
  }

  /** `ref` as the Dockerfile wrote it, `reference` its normalised form (from the plan). */
  resolve(ref: string, reference: string, platform: Platform): Promise<ResolvedImage> {
    const key = `${ref}\0${formatPlatform(platform)}`;
    let found = this.#cache.get(key);
    if (found === undefined) {
      found = this.#resolve(ref, reference, platform);
      this.#cache.set(key, found);
    }
    return found;
  }

  async #resolve(ref: string, reference: string, platform: Platform): Promise<ResolvedImage> {
    const named = this.namedContext(ref, reference);
    if (named?.kind === 'local') throw new BuildOptionsError(`named context ${ref} is a directory, not an image`);
    if (named?.kind === 'layout') return this.#fromLayout(named.dir, named.tag, platform);
    return this.#fromRegistry(named?.kind === 'image' ? formatReference(parseReference(named.reference)) : reference, platform);
  }

  async #fromRegistry(reference: string, platform: Platform): Promise<ResolvedImage> {
    const signal = this.#options.signal;
    const resolved = await resolveReference(reference, { platform, registries: this.#options.registries, ...(signal === undefined ? {} : { signal }) });
    const repository = this.#options.registries.repository(resolved.reference);
    const manifest = resolved.manifest.value;
    const config = parseImageConfig(await fetchAll(repository, manifest.config, signal === undefined ? {} : { signal }), manifest.config).value;
    return {
      name: formatReference(resolved.reference),
      descriptor: resolved.descriptor,
      manifest,
      config,
      fetcher: repository,
      registry: { host: resolved.reference.registry, repository: resolved.reference.repository },
    };
  }

  async #fromLayout(dir: string, tag: string | undefined, platform: Platform): Promise<ResolvedImage> {
    const signal = this.#options.signal === undefined ? {} : { signal: this.#options.signal };
    const layout = await OciLayout.open(dir);
    let descriptor = tag === undefined ? await layout.resolveOnly(signal) : await layout.resolve(tag, signal);
    const name = `oci:${dir}${tag === undefined ? '' : `:${tag}`}`;
    let parsed = await fetchManifest(layout, descriptor, signal);
    if (isIndexMediaType(descriptor.mediaType) || parsed.kind === 'index') {
      if (parsed.kind !== 'index') throw new NotFoundError(`image in ${name}`);
      const chosen = selectManifest(parsed.value, platform);
      if (chosen === undefined) {
        const available = parsed.value.manifests.flatMap((m) => (m.platform === undefined ? [] : [formatPlatform(m.platform)]));
        throw new PlatformNotFoundError(name, formatPlatform(platform), available);
      }
      descriptor = chosen;
      parsed = await fetchManifest(layout, descriptor, signal);
    }
    if (parsed.kind !== 'image') throw new NotFoundError(`image manifest in ${name}`);
    const manifest = parsed.value;
    const config = parseImageConfig(await fetchAll(layout, manifest.config, signal), manifest.config).value;
    return { name, descriptor, manifest, config, fetcher: layout };
  }
}
