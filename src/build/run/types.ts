/**
 * The nouns of RUN execution: what to run (`RunSpec`), on which root (`Rootfs`), and the
 * executor contract. Plain data; the executors and snapshotters are the verbs.
 */

/**
 * A root prepared as a plain directory: the command changes it in place (the copy snapshotter's
 * root, or any directory a caller owns).
 */
export interface DirectoryRootfs {
  readonly kind: 'directory';
  readonly path: string;
}

/**
 * A root assembled by overlayfs inside the executor's own mount namespace, so the mount vanishes
 * with the sandbox and nothing is ever mounted on the host. Produced by the overlay snapshotter;
 * `overlayMount(rootfs)` gives the mount call.
 */
export interface OverlayRootfs {
  readonly kind: 'overlay';
  /** The snapshot's private directory; the mount runs with it as working directory. */
  readonly dir: string;
  /** The image's layer directories in image order (bottom first), overlay format. */
  readonly lowerDirs: readonly string[];
  /** Receives every change: the new layer. */
  readonly upperDir: string;
  readonly workDir: string;
  /** Where the merged root is mounted (an empty directory on the host). */
  readonly mountpoint: string;
  /** Mount with `userxattr` (inside a user namespace): markers are `user.overlay.*`. */
  readonly userxattr: boolean;
  /** Mount with `volatile`: no sync of copied-up files (see overlayMountOptions). */
  readonly volatile: boolean;
}

export type Rootfs = DirectoryRootfs | OverlayRootfs;

/** `default` is the host's network (as BuildKit without CNI and buildah's chroot isolation). */
export type NetworkMode = 'default' | 'none' | 'host';

/** Numeric ids, resolved beforehand (see `resolveUser`). */
export interface RunUser {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups; none when absent. */
  readonly additionalGids?: readonly number[] | undefined;
}

/**
 * A host file or directory seen at `target`. Read-only unless `readonly` is false, in which case
 * the command may write but its writes are discarded when it ends (`RUN --mount=type=bind,rw`).
 */
export interface BindMount {
  readonly type: 'bind';
  readonly source: string;
  readonly target: string;
  readonly readonly?: boolean | undefined;
}

/** A persistent host directory, read-write (`RUN --mount=type=cache`); the caller owns locking. */
export interface CacheMount {
  readonly type: 'cache';
  readonly source: string;
  readonly target: string;
}

export interface TmpfsMount {
  readonly type: 'tmpfs';
  readonly target: string;
  /** Default: the kernel's (half of RAM). */
  readonly sizeBytes?: number | undefined;
  /** Default 0o1777, as for /tmp. */
  readonly mode?: number | undefined;
}

/**
 * A secret file, read-only at `target` (`/run/secrets/ID` by convention). Its bytes live only in a
 * tmpfs of the sandbox: never on disk, never in the layer.
 */
export interface SecretMount {
  readonly type: 'secret';
  readonly target: string;
  readonly content: Uint8Array;
  /** Default 0:0. */
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  /** Default 0o400. */
  readonly mode?: number | undefined;
}

/** An SSH agent socket of the host, visible at `target` (the caller sets `SSH_AUTH_SOCK`). */
export interface SshMount {
  readonly type: 'ssh';
  readonly target: string;
  readonly socket: string;
}

export type RunMount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount;

/** An `/etc/hosts` line added for the run (`--add-host name:address`). */
export interface ExtraHost {
  readonly name: string;
  readonly address: string;
}

export interface RunSpec {
  readonly rootfs: Rootfs;
  /**
   * The argv, run as it is: no shell is added (the engine turns shell form into
   * `[...SHELL, command]`). A bare `args[0]` is looked up with the `PATH` of `env` inside the
   * root, so `env` should have one (runc finds nothing without it).
   */
  readonly args: readonly string[];
  /** The command's whole environment, `NAME=value`; nothing of the host's leaks in. */
  readonly env: readonly string[];
  /** Absolute path inside the root; created (root-owned, 0755) when missing, as runc does. */
  readonly cwd: string;
  readonly user: RunUser;
  /** Default: the host's name. */
  readonly hostname?: string | undefined;
  /** Default `default`. */
  readonly network?: NetworkMode | undefined;
  readonly mounts?: readonly RunMount[] | undefined;
  readonly extraHosts?: readonly ExtraHost[] | undefined;
  /**
   * `RUN --security=insecure`: every capability this process holds instead of Docker's default
   * set, /sys writable, no masked /proc paths, every device allowed (runc). Default false.
   * Grant it only to trusted Dockerfiles: the command can then act on the host.
   */
  readonly privileged?: boolean | undefined;
}

export type OutputStream = 'stdout' | 'stderr';

export interface RunOptions {
  /** Kills the whole process tree, tears the sandbox down, and rejects with `AbortedError`. */
  readonly signal?: AbortSignal | undefined;
  /**
   * Each line of output as it arrives (without its newline; over-long lines come in pieces).
   * Called from stream events: it must not throw.
   */
  readonly onOutput?: ((line: string, stream: OutputStream) => void) | undefined;
}

export interface RunResult {
  /** The command's exit status; 128 + the signal number when a signal ended it (as shells say). */
  readonly exitCode: number;
  /** The signal that ended the command, if one did. */
  readonly signal?: NodeJS.Signals | undefined;
}

/** Runs one command in an isolated root. Implementations: `NamespaceExecutor`, `RuncExecutor`. */
export interface RunExecutor {
  readonly name: string;
  run(spec: RunSpec, options?: RunOptions): Promise<RunResult>;
}
