import type { BuildEvent } from '../build/index.js';
import { formatLocation } from '../build/index.js';

/**
 * Turns build events into log lines for people, close to BuildKit's plain progress: each step
 * gets a number, its header `#N [stage k/n] INSTRUCTION`, its output lines prefixed `#N`, and
 * `#N DONE 1.2s`. Byte-progress events are left out (a log is not a progress bar).
 */
export class BuildEventRenderer {
  readonly #steps = new Map<string, number>();
  #next = 1;

  /** The lines for one event (often none). */
  render(event: BuildEvent): string[] {
    switch (event.type) {
      case 'build-started':
        return [`#0 building ${event.stages} stage${event.stages === 1 ? '' : 's'} for ${event.platform} (target ${event.target})`];
      case 'base-resolved':
        return [`#0 resolved ${event.reference} to ${event.digest}`];
      case 'run-sandbox':
        return [`#0 RUN in a ${event.executor} sandbox, changes captured by ${event.snapshotter} snapshots`];
      case 'rootfs-materialized':
        return [`#0 [${event.stageName}] unpacked ${event.layers} base layer${event.layers === 1 ? '' : 's'} (${event.reason}) in ${seconds(event.durationMs)}`];
      case 'step-started': {
        const n = this.#number(event.stage, event.step);
        return [`#${n} [${event.stageName} ${event.step + 1}/${event.steps}] ${oneLine(event.instruction)}`];
      }
      case 'log':
        return [`#${this.#number(event.stage, event.step)} ${event.line}`];
      case 'step-finished':
        return [`#${this.#number(event.stage, event.step)} ${isCacheHit(event) ? 'CACHED' : `DONE ${seconds(event.durationMs)}`}`];
      case 'warning': {
        const where = event.file === undefined && event.startLine === undefined ? '' : ` (${formatLocation({ file: event.file, startLine: event.startLine ?? 0, endLine: event.endLine ?? event.startLine ?? 0 })})`;
        return [`WARNING: ${event.message}${where}`];
      }
      case 'output-started':
        return [`#${this.#next} exporting to ${event.destination}`];
      case 'blob':
        return event.action === 'skipped' ? [] : [`#${this.#next} ${event.action} ${event.descriptor.digest} (${event.descriptor.size} bytes)`];
      case 'retry':
        return [`#${this.#next} retrying ${event.operation} on ${event.registry} (attempt ${event.attempt + 1}/${event.maxAttempts} in ${seconds(event.delayMs)}): ${event.reason}`];
      case 'output-finished':
        return [`#${this.#next} pushed ${event.reference} in ${seconds(event.durationMs)}`];
      case 'build-finished':
        return [`build finished in ${seconds(event.durationMs)}: ${event.digest}`];
      default:
        return [];
    }
  }

  #number(stage: number, step: number): number {
    const key = `${stage}/${step}`;
    let n = this.#steps.get(key);
    if (n === undefined) {
      n = this.#next++;
      this.#steps.set(key, n);
    }
    return n;
  }
}

/** Whether a step was answered from the engine's step cache (events that say so carry `cache.hit`). */
export function isCacheHit(event: BuildEvent): boolean {
  return (event as { readonly cache?: { readonly hit?: unknown } }).cache?.hit === true;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

function oneLine(instruction: string): string {
  const first = instruction.split('\n')[0] ?? '';
  return instruction.includes('\n') ? `${first} ...` : first;
}
