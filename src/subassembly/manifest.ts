import { z } from 'zod';
import { digestSchema, type ContainerConfig, type Digest } from '../oci/index.js';
import { WHITEOUT_PREFIX, splitPath, type LayerEntry, type LayerSource } from '../layers/index.js';

export const SUBASSEMBLY_MANIFEST_MEDIA_TYPE = 'application/vnd.stevedore.subassembly.manifest.v1+json';

/** The JSON document `manifest` carries (SPEC-gitpod.md, "The subassembly service"). */
export interface SubassemblyManifest {
  readonly mediaType: typeof SUBASSEMBLY_MANIFEST_MEDIA_TYPE;
  readonly source: { readonly reference: string; readonly digest: Digest; readonly platform: string };
  readonly file: { readonly mediaType: string; readonly digest: Digest; readonly size: number; readonly diffId: Digest };
  readonly config: { readonly Env?: string[] | undefined; readonly Entrypoint?: string[] | undefined; readonly Cmd?: string[] | undefined; readonly WorkingDir?: string | undefined; readonly User?: string | undefined };
  readonly requirements: {
    readonly os: string;
    readonly architecture: string;
    readonly variant?: string | undefined;
    /** The top-level paths the file populates, absolute (`/bin`, `/etc`), sorted. */
    readonly paths: readonly string[];
    /** The uids and gids owning its entries, ascending. */
    readonly uids: readonly number[];
    readonly gids: readonly number[];
  };
}

/** The schema a stored manifest is read back with (a record written by an older or foreign process is checked, not trusted). */
export const subassemblyManifestSchema: z.ZodType<SubassemblyManifest, z.ZodTypeDef, unknown> = z
  .object({
    mediaType: z.literal(SUBASSEMBLY_MANIFEST_MEDIA_TYPE),
    source: z.object({ reference: z.string().min(1), digest: digestSchema, platform: z.string().min(1) }).strict(),
    file: z.object({ mediaType: z.string().min(1), digest: digestSchema, size: z.number().int().nonnegative(), diffId: digestSchema }).strict(),
    config: z
      .object({
        Env: z.array(z.string()).optional(),
        Entrypoint: z.array(z.string()).optional(),
        Cmd: z.array(z.string()).optional(),
        WorkingDir: z.string().optional(),
        User: z.string().optional(),
      })
      .strict(),
    requirements: z
      .object({
        os: z.string().min(1),
        architecture: z.string().min(1),
        variant: z.string().optional(),
        paths: z.array(z.string()),
        uids: z.array(z.number().int().nonnegative()),
        gids: z.array(z.number().int().nonnegative()),
      })
      .strict(),
  })
  .strict();

/**
 * JSON with every object's keys in code-point order and no insignificant whitespace: the bytes
 * depend only on the value, so a manifest read back and encoded again is byte-identical.
 */
export function canonicalJson(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(sortKeys(value)));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) sorted[key] = sortKeys(v);
  }
  return sorted;
}

/** The manifest's bytes, as `SubassemblyStatus.manifest` carries them. */
export function encodeSubassemblyManifest(manifest: SubassemblyManifest): Uint8Array {
  return canonicalJson(manifest);
}

/** The parts of an image config that matter to a consumer of the squashed file. */
export function consumerConfig(config: ContainerConfig | undefined): SubassemblyManifest['config'] {
  if (config === undefined) return {};
  return {
    ...(config.Env === undefined ? {} : { Env: [...config.Env] }),
    ...(config.Entrypoint == null ? {} : { Entrypoint: [...config.Entrypoint] }),
    ...(config.Cmd == null ? {} : { Cmd: [...config.Cmd] }),
    ...(config.WorkingDir === undefined || config.WorkingDir === '' ? {} : { WorkingDir: config.WorkingDir }),
    ...(config.User === undefined || config.User === '' ? {} : { User: config.User }),
  };
}

/** What a squashed tree needs from the filesystem it is unpacked into. */
export interface TreeRequirements {
  readonly paths: readonly string[];
  readonly uids: readonly number[];
  readonly gids: readonly number[];
}

/**
 * Passes a layer source through unchanged while noting what the manifest's `requirements`
 * name: the top-level path and the owner of every entry (whiteout markers aside). It costs one set
 * insertion per entry, so the tree is read once, by the layer writer.
 */
export class RequirementsRecorder implements LayerSource {
  readonly #source: LayerSource;
  readonly #paths = new Set<string>();
  readonly #uids = new Set<number>();
  readonly #gids = new Set<number>();

  constructor(source: LayerSource) {
    this.#source = source;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LayerEntry> {
    for await (const entry of this.#source) {
      // Whiteouts (in a squash above a base) delete from the base: they populate nothing.
      if (splitPath(entry.path).base.startsWith(WHITEOUT_PREFIX)) {
        yield entry;
        continue;
      }
      const slash = entry.path.indexOf('/');
      this.#paths.add(`/${slash < 0 ? entry.path : entry.path.slice(0, slash)}`);
      this.#uids.add(entry.uid);
      this.#gids.add(entry.gid);
      yield entry;
    }
  }

  /** What the entries read so far require (call once the source was consumed). */
  requirements(): TreeRequirements {
    const ascending = (a: number, b: number): number => a - b;
    return {
      paths: [...this.#paths].sort(),
      uids: [...this.#uids].sort(ascending),
      gids: [...this.#gids].sort(ascending),
    };
  }
}
