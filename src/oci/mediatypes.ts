/** OCI image-spec media types. */
export const OCI = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  index: 'application/vnd.oci.image.index.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  /** Deprecated by image-spec 1.1 but still found in the wild. */
  layerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  layerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  layerNondistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  empty: 'application/vnd.oci.empty.v1+json',
  layoutHeader: 'application/vnd.oci.layout.header.v1+json',
} as const;

/** Docker image manifest v2 schema 2 media types. */
export const DOCKER = {
  manifest: 'application/vnd.docker.distribution.manifest.v2+json',
  manifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  config: 'application/vnd.docker.container.image.v1+json',
  layerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  layerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  /** Schema 1 is refused everywhere; the names exist to say so clearly. */
  schema1Manifest: 'application/vnd.docker.distribution.manifest.v1+json',
  schema1SignedManifest: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === OCI.index || mediaType === DOCKER.manifestList;
}

export function isImageManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === OCI.manifest || mediaType === DOCKER.manifest;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return isIndexMediaType(mediaType) || isImageManifestMediaType(mediaType);
}

export function isSchema1MediaType(mediaType: string | undefined): boolean {
  return mediaType === DOCKER.schema1Manifest || mediaType === DOCKER.schema1SignedManifest || mediaType === 'application/json';
}

export function isConfigMediaType(mediaType: string | undefined): boolean {
  return mediaType === OCI.config || mediaType === DOCKER.config;
}

const LAYER_COMPRESSION: Readonly<Record<string, Compression>> = {
  [OCI.layer]: 'none',
  [OCI.layerGzip]: 'gzip',
  [OCI.layerZstd]: 'zstd',
  [OCI.layerNondistributable]: 'none',
  [OCI.layerNondistributableGzip]: 'gzip',
  [OCI.layerNondistributableZstd]: 'zstd',
  [DOCKER.layerGzip]: 'gzip',
  [DOCKER.layerForeignGzip]: 'gzip',
};

export function isLayerMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && mediaType in LAYER_COMPRESSION;
}

/** The compression a layer media type announces, or undefined when it is not a layer type. */
export function layerCompression(mediaType: string): Compression | undefined {
  return LAYER_COMPRESSION[mediaType];
}

/** Foreign (Docker) and non-distributable (OCI) layers must not be pushed to another registry. */
export function isNondistributableLayer(mediaType: string): boolean {
  return mediaType === DOCKER.layerForeignGzip || mediaType.startsWith('application/vnd.oci.image.layer.nondistributable.');
}

/** The layer media type for a compression, in the OCI or the Docker family. */
export function layerMediaType(compression: Compression, family: 'oci' | 'docker' = 'oci'): string {
  if (family === 'docker') {
    if (compression !== 'gzip') throw new Error(`Docker schema 2 has no ${compression} layer media type`);
    return DOCKER.layerGzip;
  }
  return compression === 'gzip' ? OCI.layerGzip : compression === 'zstd' ? OCI.layerZstd : OCI.layer;
}

/**
 * The OCI twin of a layer media type (Docker's gzip layers have the same bytes as OCI's
 * tar+gzip), used when an image is rewritten into the OCI family.
 */
export function toOciLayerMediaType(mediaType: string): string {
  if (mediaType === DOCKER.layerGzip) return OCI.layerGzip;
  if (mediaType === DOCKER.layerForeignGzip) return OCI.layerNondistributableGzip;
  return mediaType;
}

/** Whether a manifest media type belongs to the Docker schema 2 family. */
export function isDockerMediaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && mediaType.startsWith('application/vnd.docker.');
}
