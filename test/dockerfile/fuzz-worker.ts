import { parentPort, workerData } from 'node:worker_threads';
import { fuzzOne, mutations } from './fuzz-core.js';

// Runs the fuzzer off the test's thread so that a hang can be detected and stopped.
const { seed, durationMs, maxInputs } = workerData as { seed: number; durationMs: number; maxInputs: number };
const port = parentPort!;
const deadline = Date.now() + durationMs;
let inputs = 0;
let accepted = 0;
let slowest = { ms: 0, input: '' };
for (const input of mutations(seed)) {
  if (inputs >= maxInputs || Date.now() > deadline) break;
  port.postMessage({ type: 'start', index: inputs, input });
  const started = performance.now();
  try {
    if (fuzzOne(input)) accepted++;
  } catch (err) {
    port.postMessage({ type: 'failure', input, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
  const ms = performance.now() - started;
  if (ms > slowest.ms) slowest = { ms, input };
  inputs++;
}
port.postMessage({ type: 'done', inputs, accepted, slowest });
