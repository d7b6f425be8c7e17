import { parseDigest, type Digest } from './digest.js';
import { InvalidDigestError, InvalidReferenceError } from './errors.js';

/**
 * Image references, parsed the way Docker does (distribution/reference `ParseNormalizedNamed`
 * followed by `TagNameOnly`), so that a name typed on a command line or written in a `FROM` line
 * means here what it means to `docker pull`.
 *
 * Grammar (distribution/reference):
 *
 *     reference  := name [ ":" tag ] [ "@" digest ]
 *     name       := [ domain "/" ] path
 *     domain     := host [ ":" port ]            host: DNS-like name, IPv4, or "[" IPv6 "]"
 *     path       := component ( "/" component )*   at most 255 characters
 *     component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *     tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *
 * Normalisation: the first path element is a registry when it is `localhost`, contains `.` or
 * `:`, or contains an uppercase letter (path components never may, so it cannot be a namespace);
 * otherwise the registry is `docker.io`. `index.docker.io` is the same registry as `docker.io`.
 * On Docker Hub a single-component name lives under `library/`. A name with neither tag nor
 * digest gets the tag `latest` (unless `defaultTag: false`).
 *
 * Digests are restricted to what Stevedore can verify (sha256, sha512), a deliberate subset of
 * the grammar's "any algorithm with 32+ hex digits".
 */

/** A normalised image reference. `tag` and `digest` may both be present (`name:tag@digest`). */
export interface Reference {
  /** `docker.io`, `localhost:5000`, `[::1]:5000`, `ghcr.io`, … (case kept as written). */
  readonly registry: string;
  /** The repository path inside the registry, e.g. `library/alpine`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

export interface ParseReferenceOptions {
  /** Add the tag `latest` when the input names neither a tag nor a digest. Default: true. */
  readonly defaultTag?: boolean;
}

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** distribution/reference `RepositoryNameTotalLengthMax`: applies to the path, not the domain. */
export const MAX_REPOSITORY_LENGTH = 255;
export const MAX_TAG_LENGTH = 128;

const LEGACY_DEFAULT_REGISTRY = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])`;
const DOMAIN_RE = new RegExp(`^${HOST}(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
// JavaScript's \w is ASCII-only without the `u` flag, exactly Go's RE2 \w.
const TAG_RE = /^\w[\w.-]*$/;
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;

/** A part of the input for an error message, quoted and cut short (the input may be huge). */
function quote(part: string): string {
  return JSON.stringify(part.length > 80 ? `${part.slice(0, 80)}…` : part);
}

/** Parses and normalises an image reference; throws `InvalidReferenceError` saying what is wrong. */
export function parseReference(input: string, options: ParseReferenceOptions = {}): Reference {
  const fail = (reason: string): InvalidReferenceError => new InvalidReferenceError(input, reason);

  if (input === '') throw fail('empty reference');
  if (/\s/.test(input)) throw fail('contains whitespace');
  if (IMAGE_ID_RE.test(input)) {
    throw fail('a 64-character hexadecimal string is an image ID, not a repository name');
  }

  let nameAndTag = input;
  let digest: Digest | undefined;
  const at = input.indexOf('@');
  if (at >= 0) {
    nameAndTag = input.slice(0, at);
    if (nameAndTag === '') throw fail('missing repository name before "@"');
    try {
      digest = parseDigest(input.slice(at + 1));
    } catch (err) {
      if (err instanceof InvalidDigestError) throw fail(err.message);
      throw err;
    }
  }

  const { registry, remainder } = splitRegistry(nameAndTag);
  // The registry (and its port) is gone, so the first ':' left can only start the tag.
  const colon = remainder.indexOf(':');
  const repository = colon < 0 ? remainder : remainder.slice(0, colon);
  const tag = colon < 0 ? undefined : remainder.slice(colon + 1);

  if (!DOMAIN_RE.test(registry)) throw fail(`registry ${quote(registry)} is not a valid host[:port]`);
  validateRepository(repository, fail);
  if (tag !== undefined) validateTag(tag, fail);

  const withDefault = tag ?? (digest === undefined && options.defaultTag !== false ? DEFAULT_TAG : undefined);
  return build(registry, repository, withDefault, digest);
}

/** docker/distribution `splitDockerDomain`. */
function splitRegistry(name: string): { registry: string; remainder: string } {
  const slash = name.indexOf('/');
  // A single element is always a repository on Docker Hub: `localhost:5000` alone is the
  // repository `library/localhost` with tag `5000`, exactly as in Docker.
  if (slash < 0) return { registry: DEFAULT_REGISTRY, remainder: OFFICIAL_PREFIX + name };
  const first = name.slice(0, slash);
  let registry: string;
  let remainder: string;
  if (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first) {
    registry = first === LEGACY_DEFAULT_REGISTRY ? DEFAULT_REGISTRY : first;
    remainder = name.slice(slash + 1);
  } else {
    registry = DEFAULT_REGISTRY;
    remainder = name;
  }
  if (registry === DEFAULT_REGISTRY && !remainder.includes('/')) remainder = OFFICIAL_PREFIX + remainder;
  return { registry, remainder };
}

function validateRepository(repository: string, fail: (reason: string) => InvalidReferenceError): void {
  if (repository === '' || repository === OFFICIAL_PREFIX) throw fail('missing repository name');
  if (repository.toLowerCase() !== repository) {
    throw fail(`repository name ${quote(repository)} must be lowercase`);
  }
  for (const component of repository.split('/')) {
    if (component === '') throw fail(`repository name ${quote(repository)} has an empty path component`);
    if (!PATH_COMPONENT_RE.test(component)) {
      throw fail(
        `repository path component ${quote(component)} is invalid: use lowercase letters and digits, ` +
          'separated by ".", "_", "__" or dashes, not at the start or end',
      );
    }
  }
  if (repository.length > MAX_REPOSITORY_LENGTH) {
    throw fail(`repository name longer than ${MAX_REPOSITORY_LENGTH} characters (${repository.length})`);
  }
}

function validateTag(tag: string, fail: (reason: string) => InvalidReferenceError): void {
  if (tag === '') throw fail('empty tag after ":"');
  if (tag.length > MAX_TAG_LENGTH) throw fail(`tag longer than ${MAX_TAG_LENGTH} characters (${tag.length})`);
  if (!TAG_RE.test(tag)) {
    throw fail(`invalid tag ${quote(tag)}: use letters, digits, "_", "." and "-", not starting with "." or "-"`);
  }
}

/** True when `tag` is a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`). */
export function isValidTag(tag: string): boolean {
  return tag.length > 0 && tag.length <= MAX_TAG_LENGTH && TAG_RE.test(tag);
}

function build(registry: string, repository: string, tag: string | undefined, digest: Digest | undefined): Reference {
  return {
    registry,
    repository,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

/** The full normalised form: `docker.io/library/alpine:3.20@sha256:…` (tag and digest both kept). */
export function formatReference(ref: Reference): string {
  return `${referenceName(ref)}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** `registry/repository`, without tag or digest. */
export function referenceName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/**
 * The short name Docker shows: `docker.io/` dropped, and `library/` dropped when nothing nested
 * follows it (`alpine`, `myorg/app`, `ghcr.io/org/app`).
 */
export function familiarName(ref: Reference): string {
  if (ref.registry !== DEFAULT_REGISTRY) return referenceName(ref);
  if (ref.repository.startsWith(OFFICIAL_PREFIX)) {
    const rest = ref.repository.slice(OFFICIAL_PREFIX.length);
    if (!rest.includes('/')) return rest;
  }
  return ref.repository;
}

/** The familiar name with its tag and digest: `alpine:latest`, `myorg/app@sha256:…`. */
export function familiarString(ref: Reference): string {
  return `${familiarName(ref)}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** The same reference pinned to `digest` (the tag, if any, is kept). */
export function withDigest(ref: Reference, digest: Digest | string): Reference {
  return build(ref.registry, ref.repository, ref.tag, parseDigest(digest));
}

/** The same reference with another tag (the digest, if any, is kept, as Docker's `WithTag` does). */
export function withTag(ref: Reference, tag: string): Reference {
  validateTag(tag, (reason) => new InvalidReferenceError(`${referenceName(ref)}:${tag}`, reason));
  return build(ref.registry, ref.repository, tag, ref.digest);
}
