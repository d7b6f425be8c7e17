import { z } from 'zod';
import { descriptorSchema, digestSchema, type Descriptor, type Digest } from '../../oci/index.js';
import type { NodeInfo } from '../view.js';

/**
 * A cache entry: what a step produced, enough to apply it again without running it. Entries are
 * plain JSON, read back through a schema (an entry from a registry cache is untrusted input).
 */

/** The media type of an entry stored in a registry (the config blob of its manifest). */
export const CACHE_ENTRY_MEDIA_TYPE = 'application/vnd.stevedore.cache.entry.v1+json';
/** The `artifactType` of a registry cache manifest. */
export const CACHE_ARTIFACT_TYPE = 'application/vnd.stevedore.cache.v1';

const nodeSchema = z.object({
  type: z.enum(['file', 'directory', 'symlink', 'hardlink', 'char-device', 'block-device', 'fifo']),
  mode: z.number().int().nonnegative(),
  uid: z.number().int().nonnegative(),
  gid: z.number().int().nonnegative(),
  linkname: z.string().optional(),
  implicit: z.boolean().optional(),
});

const resultSchema = z.discriminatedUnion('kind', [
  /** A step that only changed the config (ENV, LABEL...). */
  z.object({ kind: z.literal('config') }),
  /** A layer of the image: its blob (compressed), and for COPY/ADD/WORKDIR the paths it wrote. */
  z.object({
    kind: z.literal('blob'),
    descriptor: descriptorSchema,
    diffId: digestSchema,
    uncompressedSize: z.number().int().nonnegative(),
    /** What the stage knows after the layer (`StageRootfs.addLayer`); absent for RUN. */
    nodes: z.array(z.tuple([z.string(), nodeSchema])).optional(),
  }),
  /** A layer of a stage the image does not include: only kept unpacked, in the rootfs cache. */
  z.object({
    kind: z.literal('unpacked'),
    diffId: digestSchema,
    uncompressedSize: z.number().int().nonnegative(),
    opaque: z.union([z.array(z.string()), z.object({ xattr: z.enum(['user', 'trusted']) })]),
  }),
]);

const cacheEntrySchema: z.ZodType<CacheEntry, z.ZodTypeDef, unknown> = z.object({
  v: z.literal(1),
  key: z.string().regex(/^[0-9a-f]{64}$/),
  result: resultSchema,
  /**
   * Whether the stage knew its whole root filesystem after the step (its base was unpacked).
   * A hit replays that: the next step that misses unpacks the root first, so it is planned with
   * the same knowledge, and writes the same layer, as in the build that made the entry.
   */
  rootKnown: z.boolean(),
});

export type CachedResult =
  | { readonly kind: 'config' }
  | {
      readonly kind: 'blob';
      readonly descriptor: Descriptor;
      readonly diffId: Digest;
      readonly uncompressedSize: number;
      readonly nodes?: readonly (readonly [string, NodeInfo])[] | undefined;
    }
  | {
      readonly kind: 'unpacked';
      readonly diffId: Digest;
      readonly uncompressedSize: number;
      readonly opaque: readonly string[] | { readonly xattr: 'user' | 'trusted' };
    };

export interface CacheEntry {
  readonly v: 1;
  /** The step's key (64 hex digits). */
  readonly key: string;
  readonly result: CachedResult;
  readonly rootKnown: boolean;
}

/** Parses an entry's JSON text; undefined when it is not a valid entry for `key`. */
export function parseCacheEntry(text: string | Uint8Array, key: string): CacheEntry | undefined {
  try {
    const parsed = cacheEntrySchema.safeParse(JSON.parse(typeof text === 'string' ? text : Buffer.from(text).toString('utf8')));
    return parsed.success && parsed.data.key === key ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
