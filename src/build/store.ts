import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { buildLayerFile, type BuildLayerOptions, type BuiltLayer, type LayerSource } from '../layers/index.js';
import { NotFoundError, OciLayout, type Descriptor, type Digest, type Fetcher, type OperationOptions, type ReadOnlyStorage } from '../oci/index.js';

/**
 * Where a build keeps the blobs it makes (layers, configs, manifests) until they reach the
 * outputs: an OCI layout in the build's work directory. Layers are written straight into its
 * blob directory by `buildLayerFile` (temporary name, renamed when complete and hashed).
 */
export class LocalBlobStore {
  private constructor(readonly layout: OciLayout) {}

  static async open(dir: string): Promise<LocalBlobStore> {
    await mkdir(dir, { recursive: true });
    return new LocalBlobStore(await OciLayout.open(dir, { create: true }));
  }

  get dir(): string {
    return this.layout.dir;
  }

  /** Archives and compresses `source` into a blob of the store. */
  async buildLayer(source: LayerSource, options: BuildLayerOptions): Promise<BuiltLayer> {
    const staging = join(this.layout.dir, 'blobs', 'sha256');
    await mkdir(staging, { recursive: true });
    const temp = join(staging, `.layer-${randomBytes(8).toString('hex')}`);
    const layer = await buildLayerFile(source, temp, options);
    const target = this.layout.blobPath(layer.digest);
    try {
      await rename(temp, target);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return layer;
  }

  /** Stores a small document (config, manifest) under its digest. */
  async putDocument(desc: Descriptor, bytes: Uint8Array, options: OperationOptions = {}): Promise<void> {
    if (await this.layout.exists(desc, options)) return;
    await this.layout.push(desc, bytes, options);
  }

  blobPath(digest: Digest): string {
    return this.layout.blobPath(digest);
  }

  async has(digest: Digest, size: number): Promise<boolean> {
    try {
      const info = await stat(this.layout.blobPath(digest));
      return info.isFile() && info.size === size;
    } catch {
      return false;
    }
  }
}

/** Where a blob that the build did not make can be fetched: a base image's registry repository or layout. */
export interface RemoteBlob {
  readonly fetcher: Fetcher;
  /** For a registry source: the registry host and repository, so pushes to that registry can mount it. */
  readonly registry?: string | undefined;
  readonly repository?: string | undefined;
}

/**
 * The content of the built image as one read-only store: blobs the build made come from the
 * local store, blobs of base images from where the base came from (a registry repository is only
 * read when an output does not have the blob already and cannot mount it).
 */
export class BuildContentSource implements ReadOnlyStorage {
  readonly #remote = new Map<string, RemoteBlob>();

  constructor(readonly local: LocalBlobStore) {}

  addRemote(digest: Digest, blob: RemoteBlob): void {
    if (!this.#remote.has(digest)) this.#remote.set(digest, blob);
  }

  remote(digest: Digest): RemoteBlob | undefined {
    return this.#remote.get(digest);
  }

  async fetch(desc: Descriptor, options: OperationOptions = {}): Promise<Readable> {
    if (await this.local.has(desc.digest, desc.size)) return this.local.layout.fetch(desc, options);
    const remote = this.#remote.get(desc.digest);
    if (remote === undefined) throw new NotFoundError(`blob ${desc.digest} of the build`);
    return remote.fetcher.fetch(desc, options);
  }

  async exists(desc: Descriptor): Promise<boolean> {
    return (await this.local.has(desc.digest, desc.size)) || this.#remote.has(desc.digest);
  }
}

