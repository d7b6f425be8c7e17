import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';

// A bounded, seeded fuzz run: mutated corpus files must parse and plan or fail with a
// DockerfileError, never anything else, and no input may hang. FUZZ_SECONDS and FUZZ_SEED make
// longer or different runs from the command line.

const SECONDS = Number(process.env['FUZZ_SECONDS'] ?? 3);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261123);
/** No single input may take this long (speed itself is the benchmark's business). */
const PER_INPUT_LIMIT_MS = 10_000;

interface Outcome {
  inputs: number;
  accepted: number;
  failures: { input: string; error: string }[];
  hung?: string;
}

function runFuzz(): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./fuzz-worker.mjs', import.meta.url), {
      workerData: { seed: SEED, durationMs: SECONDS * 1000, maxInputs: 1_000_000 },
    });
    const failures: Outcome['failures'] = [];
    let current = '';
    let watchdog = setTimeout(() => undefined, 0);
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        void worker.terminate();
        resolve({ inputs: 0, accepted: 0, failures, hung: current });
      }, PER_INPUT_LIMIT_MS);
    };
    arm();
    worker.on('message', (msg: { type: string; input?: string; error?: string; inputs?: number; accepted?: number }) => {
      if (msg.type === 'start') {
        current = msg.input!;
        arm();
      } else if (msg.type === 'failure') {
        failures.push({ input: msg.input!, error: msg.error! });
      } else if (msg.type === 'done') {
        clearTimeout(watchdog);
        void worker.terminate();
        resolve({ inputs: msg.inputs!, accepted: msg.accepted!, failures });
      }
    });
    worker.on('error', (err) => {
      clearTimeout(watchdog);
      reject(err);
    });
  });
}

describe('fuzz: the parser and planner return or throw DockerfileError', () => {
  it(`survives ${SECONDS}s of mutated corpus files (seed ${SEED})`, async () => {
    const outcome = await runFuzz();
    expect(outcome.hung, `an input took over ${PER_INPUT_LIMIT_MS} ms: ${JSON.stringify(outcome.hung)}`).toBeUndefined();
    expect(outcome.failures.slice(0, 3)).toEqual([]);
    expect(outcome.inputs).toBeGreaterThan(100);
    // Mutations must not be so destructive that nothing gets as far as the planner.
    expect(outcome.accepted).toBeGreaterThan(outcome.inputs / 20);
  }, (SECONDS + 60) * 1000);
});
