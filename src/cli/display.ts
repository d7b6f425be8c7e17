import type { Writable } from 'node:stream';

/**
 * A terminal display with a live area: permanent lines are printed above it, and the live
 * lines (transfers and steps in flight) are redrawn ten times a second. Without a terminal it
 * only prints the permanent lines, so the same code serves `--progress plain` and CI logs.
 */
export class LiveDisplay {
  readonly #out: Writable;
  readonly #render: () => readonly string[];
  #timer: NodeJS.Timeout | undefined;
  #drawn = 0;

  /** `render` gives the live lines; `live` is false for plain output. */
  constructor(out: Writable, live: boolean, render: () => readonly string[]) {
    this.#out = out;
    this.#render = render;
    if (live) {
      this.#timer = setInterval(() => this.#draw(), 100);
      this.#timer.unref();
    }
  }

  /** Prints a permanent line (above the live area, which is redrawn under it). */
  line(text: string): void {
    this.#clear();
    this.#out.write(`${text}\n`);
    this.#draw();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#clear();
  }

  #clear(): void {
    if (this.#drawn === 0) return;
    this.#out.write(`\x1b[${this.#drawn}A\x1b[J`);
    this.#drawn = 0;
  }

  #draw(): void {
    if (this.#timer === undefined) return;
    this.#clear();
    const lines = this.#render();
    for (const line of lines) this.#out.write(`${line}\n`);
    this.#drawn = lines.length;
  }
}

/** `sha256:` and the first 12 hex digits: enough to tell blobs apart on a screen. */
export function shortDigest(digest: string): string {
  return digest.slice(0, 'sha256:'.length + 12);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
