import type { Digest } from '../oci/index.js';

/**
 * What a registry client reports while it works, as plain data: the CLI renders these as a
 * progress display or JSON lines; the library itself never logs.
 */
export type RegistryEvent =
  | {
      /** A blob was already in the repository; nothing was sent. */
      readonly type: 'blob-skipped';
      readonly registry: string;
      readonly repository: string;
      readonly digest: Digest;
      readonly size: number;
    }
  | {
      /** A blob was mounted from another repository of the same registry. */
      readonly type: 'blob-mounted';
      readonly registry: string;
      readonly repository: string;
      readonly digest: Digest;
      readonly size: number;
      readonly from: string;
    }
  | {
      /** Bytes moved so far for one blob (coalesced: about every MiB and at the end). */
      readonly type: 'blob-progress';
      readonly registry: string;
      readonly repository: string;
      readonly direction: 'push' | 'pull';
      readonly digest: Digest;
      readonly transferred: number;
      readonly size: number;
    }
  | {
      /** A blob transfer finished and was verified. */
      readonly type: 'blob-done';
      readonly registry: string;
      readonly repository: string;
      readonly direction: 'push' | 'pull';
      readonly digest: Digest;
      readonly size: number;
    }
  | {
      readonly type: 'manifest-pushed';
      readonly registry: string;
      readonly repository: string;
      readonly digest: Digest;
      readonly mediaType: string;
      /** The tag it was pushed under, when not by digest. */
      readonly tag?: string;
    }
  | {
      /** An operation failed with a temporary error and will be tried again after `delayMs`. */
      readonly type: 'retry';
      readonly registry: string;
      /** What was being done: `push blob sha256:…`, `resolve repo:tag`, ... */
      readonly operation: string;
      /** The attempt that failed (1-based) and the policy's maximum. */
      readonly attempt: number;
      readonly maxAttempts: number;
      readonly delayMs: number;
      readonly cause: { readonly code: string; readonly message: string };
    }
  | {
      /** A blob upload continues from the offset the registry reported after an interruption. */
      readonly type: 'upload-resumed';
      readonly registry: string;
      readonly repository: string;
      readonly digest: Digest;
      readonly offset: number;
    };

export type RegistryEventListener = (event: RegistryEvent) => void;

/** Coalesce progress events to about one per this many bytes. */
export const PROGRESS_STEP = 1024 * 1024;
