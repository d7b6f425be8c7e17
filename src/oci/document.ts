import type { z } from 'zod';
import { digestOf, verifyBytes, type Digest, type ExpectedContent } from './digest.js';
import { InvalidDocumentError, TooLargeError } from './errors.js';
import { OCI, isIndexMediaType, isSchema1MediaType } from './mediatypes.js';
import {
  imageConfigSchema,
  imageIndexSchema,
  imageManifestSchema,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
} from './schemas.js';

/** Manifests, indexes and configs are capped: a peer cannot make us buffer more than this. */
export const MAX_DOCUMENT_SIZE = 4 * 1024 * 1024;

/**
 * A JSON document together with the exact bytes it was parsed from. The digest is over those
 * bytes, never over a re-serialisation (STYLE principle 3).
 */
export interface ParsedDocument<T> {
  readonly bytes: Uint8Array;
  readonly digest: Digest;
  readonly mediaType: string;
  readonly value: T;
}

function parseJson<S extends z.ZodTypeAny>(bytes: Uint8Array, schema: S, what: string): z.output<S> {
  if (bytes.byteLength > MAX_DOCUMENT_SIZE) throw new TooLargeError(MAX_DOCUMENT_SIZE, what);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new InvalidDocumentError(what, `not valid UTF-8 JSON (${(err as Error).message})`, { cause: err });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new InvalidDocumentError(what, `${path}: ${issue?.message ?? 'does not match the schema'}`, { cause: parsed.error });
  }
  return parsed.data;
}

function finish<T>(bytes: Uint8Array, value: T, mediaType: string, expected?: ExpectedContent, what = 'document'): ParsedDocument<T> {
  if (expected) verifyBytes(bytes, expected, what);
  return { bytes, digest: (expected?.digest as Digest | undefined) ?? digestOf(bytes), mediaType, value };
}

/**
 * The media type a manifest document declares, falling back to the one it was served or
 * described with. Refuses Docker schema 1 clearly.
 */
export function manifestMediaType(bytes: Uint8Array, announced?: string): string {
  let declared: unknown;
  let schemaVersion: unknown;
  let hasManifests = false;
  try {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    declared = json.mediaType;
    schemaVersion = json.schemaVersion;
    hasManifests = Array.isArray(json.manifests);
  } catch {
    // parseManifest reports the syntax error with context.
  }
  // Schema 1 is recognised by its version on a non-index document, or by its media type; an
  // index with a wrong schemaVersion is left to the schema check, which names the field.
  if ((schemaVersion === 1 && !hasManifests) || isSchema1MediaType(typeof declared === 'string' ? declared : announced)) {
    throw new InvalidDocumentError('manifest', 'Docker schema 1 manifests are not supported (deprecated since 2017); re-push the image with a current client');
  }
  if (typeof declared === 'string' && declared !== '') return declared;
  if (announced && announced !== 'application/octet-stream') return announced;
  return hasManifests ? OCI.index : OCI.manifest;
}

export function parseImageManifest(bytes: Uint8Array, expected?: ExpectedContent, announced?: string): ParsedDocument<ImageManifest> {
  const mediaType = manifestMediaType(bytes, announced);
  const value = parseJson(bytes, imageManifestSchema, 'image manifest');
  return finish(bytes, value, mediaType, expected, 'manifest');
}

export function parseImageIndex(bytes: Uint8Array, expected?: ExpectedContent, announced?: string): ParsedDocument<ImageIndex> {
  const mediaType = manifestMediaType(bytes, announced);
  const value = parseJson(bytes, imageIndexSchema, 'image index');
  return finish(bytes, value, mediaType, expected, 'index');
}

export function parseImageConfig(bytes: Uint8Array, expected?: ExpectedContent): ParsedDocument<ImageConfig> {
  const value = parseJson(bytes, imageConfigSchema, 'image config');
  return finish(bytes, value, OCI.config, expected, 'config');
}

export type ParsedManifest =
  | ({ readonly kind: 'index' } & ParsedDocument<ImageIndex>)
  | ({ readonly kind: 'image' } & ParsedDocument<ImageManifest>);

/** Parses either an image manifest or an index, deciding by media type. */
export function parseManifest(bytes: Uint8Array, expected?: ExpectedContent, announced?: string): ParsedManifest {
  const mediaType = manifestMediaType(bytes, announced);
  return isIndexMediaType(mediaType)
    ? { kind: 'index', ...parseImageIndex(bytes, expected, mediaType) }
    : { kind: 'image', ...parseImageManifest(bytes, expected, mediaType) };
}

/** Serialises a document canonically (what Stevedore writes: compact, key order as given). */
export function encodeDocument(value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value));
}

