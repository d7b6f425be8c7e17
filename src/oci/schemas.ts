import { z } from 'zod';
import { isDigest, type Digest } from './digest.js';

/**
 * zod schemas for the OCI image-spec documents (and their Docker schema 2 twins, which share the
 * shape). Unknown fields are kept (`passthrough`) so nothing a peer wrote is silently dropped.
 */

export const digestSchema = z.string().refine(isDigest, { message: 'must be a valid sha256 or sha512 digest' }).transform((d) => d as Digest);

const annotationsSchema = z.record(z.string(), z.string());

export const platformSchema = z
  .object({
    architecture: z.string().min(1),
    os: z.string().min(1),
    'os.version': z.string().optional(),
    'os.features': z.array(z.string()).optional(),
    variant: z.string().optional(),
    features: z.array(z.string()).optional(),
  })
  .passthrough();

export const descriptorSchema = z
  .object({
    mediaType: z.string().min(1),
    digest: digestSchema,
    size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    urls: z.array(z.string()).optional(),
    annotations: annotationsSchema.optional(),
    data: z.string().optional(),
    artifactType: z.string().optional(),
    platform: platformSchema.optional(),
  })
  .passthrough();

export const imageManifestSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    artifactType: z.string().optional(),
    config: descriptorSchema,
    layers: z.array(descriptorSchema),
    subject: descriptorSchema.optional(),
    annotations: annotationsSchema.optional(),
  })
  .passthrough();

export const imageIndexSchema = z
  .object({
    schemaVersion: z.literal(2),
    mediaType: z.string().optional(),
    artifactType: z.string().optional(),
    manifests: z.array(descriptorSchema),
    subject: descriptorSchema.optional(),
    annotations: annotationsSchema.optional(),
  })
  .passthrough();

const healthcheckSchema = z
  .object({
    Test: z.array(z.string()).optional(),
    Interval: z.number().optional(),
    Timeout: z.number().optional(),
    StartPeriod: z.number().optional(),
    StartInterval: z.number().optional(),
    Retries: z.number().optional(),
  })
  .passthrough();

const emptyObjectMap = z.record(z.string(), z.object({}).passthrough());

/** The runtime part of an image config (`config` key). Docker-only fields are allowed too. */
export const containerConfigSchema = z
  .object({
    User: z.string().optional(),
    ExposedPorts: emptyObjectMap.optional(),
    Env: z.array(z.string()).optional(),
    Entrypoint: z.array(z.string()).nullable().optional(),
    Cmd: z.array(z.string()).nullable().optional(),
    Volumes: emptyObjectMap.optional(),
    WorkingDir: z.string().optional(),
    Labels: z.record(z.string(), z.string()).optional(),
    StopSignal: z.string().optional(),
    ArgsEscaped: z.boolean().optional(),
    Healthcheck: healthcheckSchema.optional(),
    OnBuild: z.array(z.string()).nullable().optional(),
    Shell: z.array(z.string()).optional(),
  })
  .passthrough();

export const historySchema = z
  .object({
    created: z.string().optional(),
    created_by: z.string().optional(),
    author: z.string().optional(),
    comment: z.string().optional(),
    empty_layer: z.boolean().optional(),
  })
  .passthrough();

export const imageConfigSchema = z
  .object({
    created: z.string().optional(),
    author: z.string().optional(),
    architecture: z.string().min(1),
    os: z.string().min(1),
    'os.version': z.string().optional(),
    'os.features': z.array(z.string()).optional(),
    variant: z.string().optional(),
    config: containerConfigSchema.optional(),
    rootfs: z.object({ type: z.literal('layers'), diff_ids: z.array(digestSchema) }).passthrough(),
    history: z.array(historySchema).optional(),
  })
  .passthrough();

export const imageLayoutSchema = z.object({ imageLayoutVersion: z.string().min(1) }).passthrough();

export type Platform = z.infer<typeof platformSchema>;
export type Descriptor = z.infer<typeof descriptorSchema>;
export type ImageManifest = z.infer<typeof imageManifestSchema>;
export type ImageIndex = z.infer<typeof imageIndexSchema>;
export type ContainerConfig = z.infer<typeof containerConfigSchema>;
export type HistoryEntry = z.infer<typeof historySchema>;
export type ImageConfig = z.infer<typeof imageConfigSchema>;
