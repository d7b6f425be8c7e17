import type { Descriptor, Digest } from '../oci/index.js';
import type { CacheStatus } from './cache/index.js';
import type { StepLocation } from './errors.js';

/**
 * What a build reports while it runs, as plain data (the library never prints): the CLI turns
 * these into a live display, plain lines or JSON lines. Every event has a `type` and the time it
 * happened (`time`, milliseconds since the epoch).
 */

/** Identifies a step in events: the stage, the step's position in it, and its Dockerfile line. */
export interface StepIdentity extends StepLocation {
  /** The stage's position among the FROM lines. */
  readonly stage: number;
  /** The stage's name, or `stage-N`. */
  readonly stageName: string;
  /** 0-based position of the step in its stage (ONBUILD triggers of the base come first). */
  readonly step: number;
  /** How many steps the stage has. */
  readonly steps: number;
  /** The instruction as written. */
  readonly instruction: string;
}

export type BuildEvent =
  | { readonly type: 'build-started'; readonly time: number; readonly stages: number; readonly target: string; readonly platform: string }
  | {
      /** A base image was resolved to a digest (its config fetched; its layers not). */
      readonly type: 'base-resolved';
      readonly time: number;
      readonly reference: string;
      readonly digest: Digest;
      readonly platform: string;
    }
  | { readonly type: 'stage-started'; readonly time: number; readonly stage: number; readonly stageName: string; readonly base: string }
  | { readonly type: 'stage-finished'; readonly time: number; readonly stage: number; readonly stageName: string; readonly durationMs: number }
  | {
      /**
       * A stage needs the files of its base (RUN, COPY --chown=name, a destination that may be an
       * existing path...): its layers are fetched and unpacked once, then reused.
       */
      readonly type: 'rootfs-materialized';
      readonly time: number;
      readonly stage: number;
      readonly stageName: string;
      readonly reason: string;
      readonly layers: number;
      readonly durationMs: number;
    }
  | {
      /** A layer blob was downloaded (to unpack it). */
      readonly type: 'layer-fetched';
      readonly time: number;
      readonly digest: Digest;
      readonly size: number;
    }
  | {
      /**
       * How RUN is isolated and its changes captured, said once, at the first RUN: `namespace` or
       * `runc`; `overlay` (the upper directory is the layer) or `copy` (a copy of the root and a
       * comparison walk, where overlayfs cannot be mounted).
       */
      readonly type: 'run-sandbox';
      readonly time: number;
      readonly executor: string;
      readonly snapshotter: string;
    }
  | ({ readonly type: 'step-started'; readonly time: number } & StepIdentity)
  | ({
      readonly type: 'step-finished';
      readonly time: number;
      readonly durationMs: number;
      /** The layer the step added; absent for steps that only change the config. */
      readonly layer?: LayerRecord;
      /**
       * `{ hit: true }`: taken from the build cache, not run. `{ hit: false, reason }`: run, and
       * why: the first input that differs from the step's last run ("COPY src/: src/app.ts
       * changed", "build arg VERSION changed", "base image digest changed"), "not in cache",
       * "--no-cache", or why the step cannot be cached.
       */
      readonly cache: CacheStatus;
    } & StepIdentity)
  | ({
      /** Bytes of a new layer archived (uncompressed) and written (compressed) so far. */
      readonly type: 'layer-progress';
      readonly time: number;
      readonly uncompressed: number;
      readonly compressed: number;
    } & StepIdentity)
  | ({
      /** A line a RUN command printed. */
      readonly type: 'log';
      readonly time: number;
      readonly stream: 'stdout' | 'stderr';
      readonly line: string;
    } & StepIdentity)
  | {
      readonly type: 'warning';
      readonly time: number;
      readonly message: string;
      /** The BuildKit lint rule, for Dockerfile warnings. */
      readonly rule?: string;
      readonly url?: string;
      readonly file?: string;
      readonly startLine?: number;
      readonly endLine?: number;
    }
  | {
      /** Cache entries pushed to the `cacheTo` repository (after the image's outputs). */
      readonly type: 'cache-exported';
      readonly time: number;
      readonly reference: string;
      readonly entries: number;
      readonly durationMs: number;
    }
  | { readonly type: 'output-started'; readonly time: number; readonly destination: string }
  | {
      /**
       * A blob reached an output: `pushed` (its bytes were sent), `skipped` (the destination had
       * it), `mounted` (a registry mounted it from another repository), `written` (a local layout).
       */
      readonly type: 'blob';
      readonly time: number;
      readonly destination: string;
      readonly action: 'pushed' | 'skipped' | 'mounted' | 'written';
      readonly descriptor: Descriptor;
    }
  | {
      /** Bytes of one blob sent to a registry so far (coalesced, about every MiB). */
      readonly type: 'push-progress';
      readonly time: number;
      readonly destination: string;
      readonly digest: Digest;
      readonly transferred: number;
      readonly size: number;
    }
  | {
      /** A registry operation failed with a temporary error and is tried again. */
      readonly type: 'retry';
      readonly time: number;
      readonly registry: string;
      readonly operation: string;
      readonly attempt: number;
      readonly maxAttempts: number;
      readonly delayMs: number;
      readonly reason: string;
    }
  | { readonly type: 'output-finished'; readonly time: number; readonly destination: string; readonly reference: string; readonly durationMs: number }
  | { readonly type: 'build-finished'; readonly time: number; readonly digest: Digest; readonly durationMs: number };

export type BuildEventType = BuildEvent['type'];

/** A layer a step produced. */
export interface LayerRecord {
  /**
   * The blob; absent for a layer of a stage the image does not include (only read back by later
   * stages, so it is kept unpacked and never archived).
   */
  readonly descriptor?: Descriptor | undefined;
  /** The diffID (for a RUN layer of such a stage, a unique id: the layer is never archived). */
  readonly diffId: Digest;
  readonly uncompressedSize: number;
}

/**
 * An unbounded queue of events read as an `AsyncIterable` by one consumer. Buffering starts when
 * the iterable is first asked for, so a caller that never reads events never holds them. The
 * iteration ends once `close` is called and the buffer is drained.
 */
export class EventChannel<T> {
  #buffer: T[] | undefined;
  #waiting: ((result: IteratorResult<T>) => void) | undefined;
  #closed = false;
  #taken = false;

  push(event: T): void {
    if (this.#closed || this.#buffer === undefined) return;
    if (this.#waiting !== undefined) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ value: event, done: false });
      return;
    }
    this.#buffer.push(event);
  }

  close(): void {
    this.#closed = true;
    if (this.#waiting !== undefined && (this.#buffer?.length ?? 0) === 0) {
      const resolve = this.#waiting;
      this.#waiting = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  /** The events as an async iterable; may be taken once. */
  iterable(): AsyncIterable<T> {
    if (this.#taken) throw new Error('the build events can be read only once');
    this.#taken = true;
    this.#buffer ??= [];
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<T> => ({
        next: (): Promise<IteratorResult<T>> => {
          const buffer = this.#buffer ?? [];
          if (buffer.length > 0) return Promise.resolve({ value: buffer.shift()!, done: false });
          if (this.#closed) return Promise.resolve({ value: undefined, done: true });
          return new Promise((resolve) => {
            this.#waiting = resolve;
          });
        },
        return: (): Promise<IteratorResult<T>> => {
          // The consumer stopped reading: stop buffering for it.
          this.#buffer = undefined;
          this.#closed = true;
          return Promise.resolve({ value: undefined, done: true });
        },
      }),
    };
  }

}
