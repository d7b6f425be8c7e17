import { parseGoDurationNanoseconds } from '../dockerfile/index.js';

/**
 * Go's `time.ParseDuration` syntax (mk3's config writes `refCache.interval` as `6h0m0s`): a
 * sequence of decimal numbers, each with a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), with an
 * optional sign; `0` alone is zero. Returns milliseconds, or undefined when the text is not a
 * duration.
 */
export function parseGoDuration(text: string): number | undefined {
  const nanoseconds = parseGoDurationNanoseconds(text);
  return nanoseconds === undefined ? undefined : nanoseconds / 1e6;
}

/** A duration for messages: `1h30m`, `45s`, `250ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const seconds = Math.round(ms / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  return `${h > 0 ? `${h}h` : ''}${m > 0 ? `${m}m` : ''}${s > 0 || (h === 0 && m === 0) ? `${s}s` : ''}`;
}
