import { StevedoreError } from '../../errors.js';

/**
 * The errors of RUN execution. A command that exits non-zero is not an error here: the
 * executor reports its exit code and the engine decides. These are the failures around it.
 */

/** No executor (or no snapshot mode) can work on this host; `missing` names each reason. */
export class RunUnavailableError extends StevedoreError {
  override name = 'RunUnavailableError';
  constructor(
    readonly missing: readonly string[],
    what = 'RUN',
  ) {
    super('RUN_UNAVAILABLE', `${what} cannot be executed on this host: ${missing.join('; ')}`);
  }
}

/**
 * The sandbox around a command could not be set up: a mount failed, a mount target has the wrong
 * type, the user cannot be switched to. Nothing of the command ran. `detail` is the tail of what
 * the host tools reported (paths, never secret contents).
 */
export class RunSetupError extends StevedoreError {
  override name = 'RunSetupError';
  constructor(
    reason: string,
    readonly detail?: string,
    options?: { cause?: unknown },
  ) {
    super('RUN_SETUP_FAILED', detail ? `${reason}: ${detail}` : reason, options);
  }
}

/** Preparing a root filesystem or computing its changes failed. */
export class SnapshotError extends StevedoreError {
  override name = 'SnapshotError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('SNAPSHOT_FAILED', message, options);
  }
}

/** A path inside a root could not be resolved (a symlink loop, a file used as a directory). */
export class RootPathError extends StevedoreError {
  override name = 'RootPathError';
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super('ROOT_PATH', `cannot resolve ${JSON.stringify(path)} inside the root filesystem: ${reason}`);
  }
}

/** `resolveUser` could not find a user or group name in the image's /etc/passwd or /etc/group. */
export class UserNotFoundError extends StevedoreError {
  override name = 'UserNotFoundError';
  constructor(
    readonly spec: string,
    reason: string,
  ) {
    super('USER_NOT_FOUND', `unable to find user ${JSON.stringify(spec)}: ${reason}`);
  }
}

/** A host tool (tar, cp, mount) failed outside any command's sandbox. */
export class HostToolError extends StevedoreError {
  override name = 'HostToolError';
  constructor(
    readonly tool: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super('HOST_TOOL_FAILED', `${tool} failed: ${reason}`, options);
  }
}

/**
 * A RUN asks for more than the build grants: `--security=insecure` (BuildKit's
 * `security.insecure` entitlement) runs the command with every capability, so a build must opt
 * in; it is refused, never silently run sandboxed.
 */
export class RunEntitlementError extends StevedoreError {
  override name = 'RunEntitlementError';
  constructor(readonly entitlement: 'security.insecure') {
    super('RUN_NOT_ENTITLED', `RUN --security=insecure needs the ${entitlement} entitlement, which this build does not grant (--allow security.insecure)`);
  }
}
