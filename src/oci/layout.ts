import { mkdir, open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { throwIfAborted } from '../errors.js';
import { abortReason, fetchAll, openVerified, parseManifestFor, verifiedReadable } from './content.js';
import { digestAlgorithm, digestHex, isDigest, parseDigest, type Digest } from './digest.js';
import { encodeDocument, manifestMediaType, parseImageIndex } from './document.js';
import { InvalidDocumentError, InvalidReferenceError, NotFoundError } from './errors.js';
import { OCI } from './mediatypes.js';
import { imageLayoutSchema, type Descriptor, type ImageIndex } from './schemas.js';
import type { BlobContent, OperationOptions, TagLister, Target } from './store.js';
import { syncDirectory, tempSuffix, writeAll, writeFileAtomic } from './files.js';

/**
 * An OCI image layout directory (image-spec `image-layout.md`) as a `Target`:
 *
 *     DIR/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *     DIR/index.json            an image index; tagged entries carry org.opencontainers.image.ref.name
 *     DIR/blobs/<alg>/<hex>     content, named by digest
 *
 * Crash safety, in the order things reach the disk:
 * - a blob is written to `blobs/.tmp-…`, verified against size and digest while it is written,
 *   fsynced, then renamed into place (two writers of the same blob both succeed; the rename is
 *   atomic, so readers never see half a blob);
 * - `index.json` is written last (by `tag`), to a temporary file that is fsynced and renamed, so
 *   at every moment it points only at complete images.
 *
 * A new layout (`open(dir, { create: true })` on a missing or empty directory) writes nothing
 * until it is used: the first push creates `blobs/`, the first `tag` writes `oci-layout` and then
 * `index.json`. A directory whose first operation failed therefore never looks like a valid
 * layout; removing such a directory is the caller's decision.
 *
 * Reads accept what skopeo and umoci write (umoci's manifests omit `mediaType`; skopeo names
 * images by the ref-name annotation).
 */

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_INDEX_FILE = 'index.json';
export const OCI_BLOBS_DIR = 'blobs';
export const IMAGE_LAYOUT_VERSION = '1.0.0';
/** The annotation that names an image in a layout's `index.json` (what `oci:DIR:TAG` means). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

// image-spec annotations.md: the grammar of org.opencontainers.image.ref.name.
const REF_COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const REF_NAME_RE = new RegExp(`^${REF_COMPONENT}(?:/${REF_COMPONENT})*$`);

/** True when `name` may be used as an image name inside a layout (the ref-name grammar). */
export function isValidLayoutRefName(name: string): boolean {
  return REF_NAME_RE.test(name);
}

export interface OpenLayoutOptions {
  /**
   * Accept a missing or empty directory as a new, empty layout. Nothing is written until the
   * first push (see the class comment). Default: false (the layout must exist and be valid).
   */
  readonly create?: boolean;
}

// One queue of index.json updates per directory for the whole process, so that two OciLayout
// objects over the same directory cannot lose each other's tags.
const indexLocks = new Map<string, Promise<void>>();

async function withIndexLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = indexLocks.get(dir) ?? Promise.resolve();
  const run = previous.then(fn);
  const tail = run.then(
    () => undefined,
    () => undefined,
  );
  indexLocks.set(dir, tail);
  try {
    return await run;
  } finally {
    if (indexLocks.get(dir) === tail) indexLocks.delete(dir);
  }
}

function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | null)?.code === code;
}

export class OciLayout implements Target, TagLister {
  /** The layout directory, absolute. */
  readonly dir: string;
  /** Whether `oci-layout` is known to exist (false for a new layout until its first tag). */
  #initialised: boolean;

  private constructor(dir: string, initialised: boolean) {
    this.dir = dir;
    this.#initialised = initialised;
  }

  /**
   * Opens the layout in `dir`, validating `oci-layout` and `index.json`. Throws `NotFoundError`
   * when the directory does not exist (unless `create`), `InvalidDocumentError` when it is not a
   * valid layout.
   */
  static async open(dir: string, options: OpenLayoutOptions = {}): Promise<OciLayout> {
    const root = resolvePath(dir);
    const what = `OCI layout ${root}`;
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(root)).isDirectory();
    } catch (err) {
      if (isErrno(err, 'ENOENT') && options.create === true) return new OciLayout(root, false);
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(what, { cause: err });
      throw err;
    }
    if (!isDirectory) throw new InvalidDocumentError(what, 'not a directory');

    let layoutBytes: Buffer;
    try {
      layoutBytes = await readFile(join(root, OCI_LAYOUT_FILE));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
      if (options.create !== true) throw new InvalidDocumentError(what, `missing ${OCI_LAYOUT_FILE} file`, { cause: err });
      const layout = new OciLayout(root, false);
      // An index.json without oci-layout is somebody else's half-written layout: do not adopt it.
      if ((await layout.#readIndexFile()) !== undefined) throw new InvalidDocumentError(what, `has ${OCI_INDEX_FILE} but no ${OCI_LAYOUT_FILE}`);
      return layout;
    }
    parseLayoutFile(layoutBytes, what);
    const layout = new OciLayout(root, true);
    const index = await layout.#readIndexFile();
    // oci-layout without index.json is the state a crash between our two writes leaves.
    if (index === undefined && options.create !== true) throw new InvalidDocumentError(what, `missing ${OCI_INDEX_FILE}`);
    return layout;
  }

  /** The path of a blob inside the layout (whether or not it exists). */
  blobPath(digest: Digest | string): string {
    const valid = parseDigest(digest);
    return join(this.dir, OCI_BLOBS_DIR, digestAlgorithm(valid), digestHex(valid));
  }

  async fetch(desc: Descriptor, options: OperationOptions = {}): Promise<Readable> {
    throwIfAborted(options.signal);
    let handle: FileHandle;
    try {
      handle = await open(this.blobPath(desc.digest), 'r');
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`blob ${desc.digest} in OCI layout ${this.dir}`, { cause: err });
      throw err;
    }
    // 1 MiB reads: a blob of a few GiB is a few thousand thread-pool round trips, not tens of thousands.
    return verifiedReadable(handle.createReadStream({ highWaterMark: 1024 * 1024 }), desc, options.signal);
  }

  /** True when the blob is on disk with the announced size (the digest is checked on fetch). */
  async exists(desc: Descriptor, options: OperationOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal);
    try {
      const info = await stat(this.blobPath(desc.digest));
      return info.isFile() && info.size === desc.size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /**
   * Writes a blob: temp file, verified while written, fsync, rename. On any failure (content
   * that does not match `desc`, a source error, an abort) the temp file is removed and nothing
   * becomes visible. An opener is called once; a stream that already verifies `desc` (another
   * store's `fetch`) is trusted to fail at its end instead of being hashed again, and the rename
   * happens only after it ended cleanly.
   */
  async push(desc: Descriptor, content: BlobContent, options: OperationOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    const target = this.blobPath(desc.digest);
    const temp = join(this.dir, OCI_BLOBS_DIR, `.tmp-${digestHex(parseDigest(desc.digest)).slice(0, 16)}-${tempSuffix()}`);
    let source: Readable;
    try {
      source = await openVerified(content, desc, options.signal);
    } catch (err) {
      throw abortReason(err, options.signal);
    }
    let handle: FileHandle;
    try {
      await mkdir(dirname(target), { recursive: true });
      handle = await open(temp, 'wx', 0o644);
    } catch (err) {
      source.destroy();
      throw err;
    }
    let closed = false;
    try {
      // for await throws when the stream errors, including a verification failure at its end.
      for await (const chunk of source) {
        await writeAll(handle, chunk as Uint8Array);
      }
      await handle.sync();
      closed = true;
      await handle.close();
      await rename(temp, target);
    } catch (err) {
      if (!closed) await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
      throw abortReason(err, options.signal);
    }
    await syncDirectory(dirname(target));
  }

  /**
   * Resolves an image name (the ref-name annotation in `index.json`) or a digest: an entry of
   * `index.json` with that digest, else a manifest blob in the layout (parsed to learn its type).
   */
  async resolve(reference: string, options: OperationOptions = {}): Promise<Descriptor> {
    throwIfAborted(options.signal);
    const manifests = await this.manifests();
    const named = manifests.find((desc) => desc.annotations?.[REF_NAME_ANNOTATION] === reference);
    if (named !== undefined) return named;
    if (isDigest(reference)) {
      const listed = manifests.find((desc) => desc.digest === reference);
      if (listed !== undefined) return listed;
      return this.#describeManifestBlob(reference, options);
    }
    throw new NotFoundError(`image ${JSON.stringify(reference)} in OCI layout ${this.dir}`);
  }

  /**
   * What `oci:DIR` without a name means to skopeo: the one image of a layout that holds exactly
   * one. Throws `NotFoundError` for an empty layout, `InvalidReferenceError` when it is ambiguous.
   */
  async resolveOnly(options: OperationOptions = {}): Promise<Descriptor> {
    throwIfAborted(options.signal);
    const manifests = await this.manifests();
    const [only] = manifests;
    if (only === undefined) throw new NotFoundError(`any image in OCI layout ${this.dir}`);
    if (manifests.length > 1) {
      throw new InvalidReferenceError(formatLayoutReference({ dir: this.dir }), `the layout holds ${manifests.length} images; name one with oci:DIR:NAME`);
    }
    return only;
  }

  /**
   * Names `desc` `reference` in `index.json` (replacing an entry with the same name). The blob
   * must already be in the layout. On a new layout this is the moment `oci-layout` and
   * `index.json` are first written.
   */
  async tag(desc: Descriptor, reference: string, options: OperationOptions = {}): Promise<void> {
    throwIfAborted(options.signal);
    if (!isValidLayoutRefName(reference)) {
      throw new InvalidReferenceError(reference, 'not a valid image name inside an OCI layout (letters and digits separated by "-", ".", "_", ":", "@", "+", "--" or "/")');
    }
    if (!(await this.exists(desc))) {
      throw new NotFoundError(`blob ${desc.digest} in OCI layout ${this.dir} (cannot name it ${JSON.stringify(reference)})`);
    }
    await withIndexLock(this.dir, async () => {
      if (!this.#initialised) {
        await mkdir(this.dir, { recursive: true });
        // Another writer may have created the layout since open(); its oci-layout is as good.
        const exists = await stat(join(this.dir, OCI_LAYOUT_FILE)).then(
          () => true,
          (err: unknown) => (isErrno(err, 'ENOENT') ? false : Promise.reject(err)),
        );
        if (!exists) await writeFileAtomic(join(this.dir, OCI_LAYOUT_FILE), encodeDocument({ imageLayoutVersion: IMAGE_LAYOUT_VERSION }));
        this.#initialised = true;
      }
      const index: ImageIndex = (await this.#readIndexFile()) ?? { schemaVersion: 2, manifests: [] };
      const entry: Descriptor = { ...desc, annotations: { ...desc.annotations, [REF_NAME_ANNOTATION]: reference } };
      const manifests = [...index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== reference), entry];
      const { schemaVersion: _version, mediaType: _mediaType, manifests: _old, ...rest } = index;
      await writeFileAtomic(join(this.dir, OCI_INDEX_FILE), encodeDocument({ schemaVersion: 2, mediaType: OCI.index, manifests, ...rest }));
    });
  }

  /** The image names in `index.json`, sorted. */
  async tags(options: OperationOptions = {}): Promise<string[]> {
    throwIfAborted(options.signal);
    const names = new Set<string>();
    for (const desc of await this.manifests()) {
      const name = desc.annotations?.[REF_NAME_ANNOTATION];
      if (name !== undefined) names.add(name);
    }
    return [...names].sort();
  }

  /** The entries of `index.json` as written (empty for a new layout). */
  async manifests(): Promise<readonly Descriptor[]> {
    return (await this.#readIndexFile())?.manifests ?? [];
  }

  /** index.json, or undefined when it does not exist (yet): `open` decides whether that is valid. */
  async #readIndexFile(): Promise<ImageIndex | undefined> {
    const path = join(this.dir, OCI_INDEX_FILE);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    try {
      return parseImageIndex(bytes).value;
    } catch (err) {
      if (err instanceof InvalidDocumentError) {
        const prefix = `invalid ${err.what}: `;
        const reason = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
        throw new InvalidDocumentError(`OCI layout index ${path}`, reason, { cause: err });
      }
      throw err;
    }
  }

  async #describeManifestBlob(digest: Digest, options: OperationOptions): Promise<Descriptor> {
    let size: number;
    try {
      size = (await stat(this.blobPath(digest))).size;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new NotFoundError(`manifest ${digest} in OCI layout ${this.dir}`, { cause: err });
      throw err;
    }
    const probe: Descriptor = { mediaType: 'application/octet-stream', digest, size };
    const bytes = await fetchAll(this, probe, options);
    const desc: Descriptor = { ...probe, mediaType: manifestMediaType(bytes) };
    parseManifestFor(bytes, desc); // a digest that names a layer or config is not an image
    return desc;
  }
}

function parseLayoutFile(bytes: Uint8Array, what: string): void {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (err) {
    throw new InvalidDocumentError(what, `${OCI_LAYOUT_FILE} is not valid JSON`, { cause: err });
  }
  const parsed = imageLayoutSchema.safeParse(json);
  if (!parsed.success) throw new InvalidDocumentError(what, `${OCI_LAYOUT_FILE} has no imageLayoutVersion`, { cause: parsed.error });
  // Minor and patch versions are compatible by the spec's semver promise; 2.x would not be.
  if (!/^1\.\d+\.\d+$/.test(parsed.data.imageLayoutVersion)) {
    throw new InvalidDocumentError(what, `unsupported imageLayoutVersion ${JSON.stringify(parsed.data.imageLayoutVersion)} (expected ${IMAGE_LAYOUT_VERSION})`);
  }
}

/** An OCI layout named the way skopeo's `oci:` transport names it. */
export interface LayoutReference {
  readonly dir: string;
  /** The image name inside the layout (the ref-name annotation); absent for `oci:DIR`. */
  readonly tag?: string;
}

/**
 * Parses `oci:DIR[:NAME]` exactly as skopeo does: the first `:` after `oci:` ends the directory
 * (`oci:/tmp/x:v1` → `/tmp/x` and `v1`; `oci:/tmp/x:registry.local/app:v1` keeps the whole
 * `registry.local/app:v1` as the name). A directory whose path contains `:` cannot be named this
 * way (as with skopeo); pass such a path to `OciLayout.open` directly.
 */
export function parseLayoutReference(input: string): LayoutReference {
  const prefix = 'oci:';
  if (!input.startsWith(prefix)) throw new InvalidReferenceError(input, 'an OCI layout reference starts with "oci:" (oci:DIR or oci:DIR:NAME)');
  const rest = input.slice(prefix.length);
  const colon = rest.indexOf(':');
  const dir = colon < 0 ? rest : rest.slice(0, colon);
  if (dir === '') throw new InvalidReferenceError(input, 'missing directory after "oci:"');
  if (colon < 0) return { dir };
  const tag = rest.slice(colon + 1);
  if (tag === '') throw new InvalidReferenceError(input, 'empty image name after the directory');
  if (!isValidLayoutRefName(tag)) {
    throw new InvalidReferenceError(input, `${JSON.stringify(tag)} is not a valid image name inside an OCI layout`);
  }
  return { dir, tag };
}

export function formatLayoutReference(ref: LayoutReference): string {
  return ref.tag === undefined ? `oci:${ref.dir}` : `oci:${ref.dir}:${ref.tag}`;
}
