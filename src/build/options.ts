import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Compression, Platform } from '../oci/index.js';
import type { RegistryClientOptions, RegistryClientPool } from '../registry/index.js';
import type { ExecutorKind, SnapshotMode } from './run/index.js';
import type { BuildEvent } from './events.js';

/** Where the built image goes. Every output receives the same image (same manifest digest). */
export type BuildOutput =
  /** A registry reference (`host/repo:tag`); blobs already in the registry are skipped or mounted. */
  | { readonly type: 'registry'; readonly reference: string }
  /** An OCI image layout directory, the image named `tag` in its index.json (default `latest`). */
  | { readonly type: 'layout'; readonly dir: string; readonly tag?: string };

/** A RUN secret (`RUN --mount=type=secret,id=ID`): a file's content or an environment variable's. */
export type BuildSecret = { readonly file: string } | { readonly env: string } | { readonly value: string | Uint8Array };

export interface BuildOptions {
  /** The build context directory (filtered by `.dockerignore`). */
  readonly context: string;
  /**
   * The Dockerfile: a path (relative paths are taken against the context, as `docker build -f`
   * does for a relative path given with a context), or its text. Default `<context>/Dockerfile`.
   */
  readonly dockerfile?: string | { readonly text: string | Uint8Array; readonly name?: string } | undefined;
  readonly buildArgs?: Readonly<Record<string, string>> | undefined;
  /** The stage to build (default: the last one). */
  readonly target?: string | undefined;
  /** The platform to build for (default linux/amd64, as BuildKit's default target). */
  readonly platform?: string | Platform | undefined;
  /** Labels added to the image config (after the Dockerfile's, which they override). */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Where the image goes. None: the image is built and checked, then discarded. */
  readonly outputs?: readonly BuildOutput[] | undefined;
  /**
   * Named contexts, as `docker buildx build --build-context NAME=VALUE`: `FROM NAME` and
   * `COPY --from=NAME` use VALUE instead. VALUE is `docker-image://REF`, `oci:DIR[:TAG]` (or
   * `oci-layout://DIR[:TAG]`), or a local directory.
   */
  readonly contexts?: Readonly<Record<string, string>> | undefined;
  /** Registry access: credentials, insecure hosts, retry policy, TLS. */
  readonly registry?: RegistryClientOptions | undefined;
  /** Clients to use instead of a pool of the build's own (kept open after the build). */
  readonly registries?: RegistryClientPool | undefined;
  /**
   * Seconds since the epoch for the config's and history's `created` and the upper bound of
   * file times in new layers. Default: the `SOURCE_DATE_EPOCH` build arg, else 0 (see
   * `BUILD_DEFAULTS`): the same inputs always give the same image.
   */
  readonly sourceDateEpoch?: number | undefined;
  /** `clamp` (default): file times later than the epoch are lowered to it; `keep`: times as found. */
  readonly fileTimestamps?: 'clamp' | 'keep' | undefined;
  /** Layer compression of new layers. Default gzip. */
  readonly compression?: Compression | undefined;
  readonly compressionLevel?: number | undefined;
  /** Media types of the manifest and config. Default `oci`. */
  readonly mediaTypes?: 'oci' | 'docker' | undefined;
  /**
   * `lazy` (default): a base image's layers are fetched only when a step needs its files (RUN,
   * `COPY --chown=NAME`, a destination that may be an existing path); otherwise the new layers
   * are written without them. `eager`: every stage's root filesystem is unpacked first.
   */
  readonly baseLayers?: 'lazy' | 'eager' | undefined;
  /** Stages run at once (independent stages of a multi-stage build). Default 2. */
  readonly concurrency?: number | undefined;
  /** Secrets for `RUN --mount=type=secret`, by id. */
  readonly secrets?: Readonly<Record<string, BuildSecret>> | undefined;
  /** SSH agent sockets for `RUN --mount=type=ssh`, by id (`default`: usually `$SSH_AUTH_SOCK`). */
  readonly ssh?: Readonly<Record<string, string>> | undefined;
  /**
   * Privileges RUN may ask for (BuildKit's entitlements, `docker buildx build --allow`):
   * `security.insecure` lets `RUN --security=insecure` run with every capability this process
   * holds. Default: none, and such a RUN fails naming its line.
   */
  readonly allow?: readonly 'security.insecure'[] | undefined;
  /** Which RUN executor: `auto` (default: namespaces, else runc), `namespace` or `runc`. */
  readonly runExecutor?: ExecutorKind | 'auto' | undefined;
  /** How RUN captures changes: `auto` (overlayfs where it mounts, else a copy), `overlay`, `copy`. */
  readonly snapshotter?: SnapshotMode | 'auto' | undefined;
  /**
   * A directory for this build's temporary files (a fresh directory is made inside it and
   * removed afterwards). Default: `<cacheDir>/tmp`, on the cache's filesystem, so built layers
   * move into the cache by renaming and cached ones are hard-linked, never copied.
   */
  readonly workDir?: string | undefined;
  /**
   * Where the build cache (step entries and layer blobs), unpacked layers and RUN cache mounts
   * are kept between builds. Default `$XDG_CACHE_HOME/stevedore` (or `~/.cache/stevedore`).
   */
  readonly cacheDir?: string | undefined;
  /**
   * Bound of the step cache's entries and layer blobs in `cacheDir`, in bytes: after each build the
   * least recently used are removed down to it (never those the build itself used). Default 10 GiB.
   * Unpacked layers and RUN cache mounts are bounded by age instead (`unusedMaxAgeSeconds`).
   */
  readonly cacheMaxBytes?: number | undefined;
  /**
   * What `cacheDir` keeps for builds beside the step cache: unpacked layers (base layers RUN
   * needed, layers of stages the image does not include) and RUN cache mounts. After each build,
   * those no build used for this long are removed. Default 7 days.
   */
  readonly unusedMaxAgeSeconds?: number | undefined;
  /** Registry caches to look steps up in after the local cache (`--cache-from REF`): repositories, a tag is ignored. */
  readonly cacheFrom?: readonly string[] | undefined;
  /** A registry repository to export the image's cache entries to after a successful build (`--cache-to REF`). */
  readonly cacheTo?: string | undefined;
  /** Run every step (`--no-cache`); what they make is still written to the cache. */
  readonly noCache?: boolean | undefined;
  /** Run every step of these stages, by name or index (`--no-cache-filter STAGE`); entries are still written. */
  readonly noCacheFilter?: readonly string[] | undefined;
  /** Called with every event, as they happen (besides the job's `events` iterable). Must not throw. */
  readonly onEvent?: ((event: BuildEvent) => void) | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** The defaults of `BuildOptions`, in one place. */
export const BUILD_DEFAULTS = Object.freeze({
  dockerfile: 'Dockerfile',
  platform: 'linux/amd64',
  /** Not BuildKit's (it uses the current time): a fixed epoch makes builds reproducible by default. */
  sourceDateEpoch: 0,
  fileTimestamps: 'clamp' as const,
  compression: 'gzip' as Compression,
  mediaTypes: 'oci' as const,
  baseLayers: 'lazy' as const,
  concurrency: 2,
  layoutTag: 'latest',
  /** 10 GiB. */
  cacheMaxBytes: 10 * 1024 * 1024 * 1024,
  unusedMaxAgeSeconds: 7 * 24 * 60 * 60,
});

/** The default cache directory: `$XDG_CACHE_HOME/stevedore`, else `~/.cache/stevedore`. */
export function defaultCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'stevedore');
  const home = env.HOME ?? homedir();
  return home === '' ? join(tmpdir(), 'stevedore-cache') : join(home, '.cache', 'stevedore');
}
