import { AbortedError } from '../errors.js';
import { runBuild, type BuildResult } from './builder.js';
import { EventChannel, type BuildEvent } from './events.js';
import type { BuildOptions } from './options.js';

/** A running build. */
export interface BuildJob {
  /**
   * The build's events, in order, until it ends (successfully or not). Events are kept from the
   * moment this is first read, so read it right after `build()` returns; it can be read once.
   */
  readonly events: AsyncIterable<BuildEvent>;
  /** Resolves with the result, or rejects with a typed error (`BuildStepError` for a failed step). */
  readonly result: Promise<BuildResult>;
  /** Stops the build: running commands are killed, temporary files removed; `result` rejects with `AbortedError`. */
  cancel(reason?: unknown): void;
}

/**
 * Builds an image from a Dockerfile and a context and writes it to the outputs. Nothing is
 * printed; progress is in `events` (and `options.onEvent`).
 *
 *     const job = build({ context: '.', outputs: [{ type: 'registry', reference: 'localhost:5000/app:1' }] });
 *     for await (const event of job.events) render(event);
 *     const { digest } = await job.result;
 */
export function build(options: BuildOptions): BuildJob {
  const controller = new AbortController();
  const signal = options.signal === undefined ? controller.signal : AbortSignal.any([options.signal, controller.signal]);
  const channel = new EventChannel<BuildEvent>();
  const emit = (event: BuildEvent): void => {
    channel.push(event);
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's failure must not break the build.
    }
  };
  const result = (async (): Promise<BuildResult> => {
    // Start on a later turn, so a caller that reads `events` right away misses nothing.
    await new Promise((resolve) => setImmediate(resolve));
    try {
      return await runBuild(options, emit, signal);
    } catch (err) {
      if (signal.aborted && !(err instanceof AbortedError)) throw new AbortedError('build cancelled', { cause: signal.reason });
      throw err;
    } finally {
      channel.close();
    }
  })();
  // The caller may only read events; an unobserved failure must not crash the process.
  result.catch(() => undefined);
  let events: AsyncIterable<BuildEvent> | undefined;
  return {
    get events() {
      events ??= channel.iterable();
      return events;
    },
    result,
    cancel: (reason?: unknown) => controller.abort(reason ?? new AbortedError('build cancelled')),
  };
}

/** The keys buildx writes to `--metadata-file`. */
export interface BuildxMetadata {
  readonly 'containerimage.digest': string;
  readonly 'containerimage.config.digest': string;
  readonly 'containerimage.descriptor': { readonly mediaType: string; readonly digest: string; readonly size: number };
  readonly 'image.name'?: string;
}

/** `--metadata-file` content for a result, as buildx writes it (`image.name`: the pushed names, comma-separated). */
export function buildxMetadata(result: BuildResult, names: readonly string[] = []): BuildxMetadata {
  return {
    'containerimage.config.digest': result.config.digest,
    'containerimage.descriptor': { mediaType: result.manifest.mediaType, digest: result.manifest.digest, size: result.manifest.size },
    'containerimage.digest': result.digest,
    ...(names.length === 0 ? {} : { 'image.name': names.join(',') }),
  };
}
