import { Worker } from 'node:worker_threads';

/**
 * A pool of worker threads that deflate independent blocks. The worker is plain JavaScript
 * evaluated from a string and uses only node:zlib, so it runs the same under tsx, vitest and
 * compiled dist/ (no worker file path to resolve).
 *
 * The pool is shared by every gzip stream of the process and grows to the largest worker count
 * asked for. Idle workers are unref'd so they never keep the process alive; a worker with a
 * task is ref'd so the process does not exit under a pending compression.
 *
 * Incompressible input is stored, not deflated. Deflating random bytes (compressed files,
 * encrypted data) costs as much CPU as deflating text, about 45 MB/s per core at level 6 and 55
 * at level 1, and gains nothing: zlib ends up emitting them as stored blocks anyway. So each
 * block is judged in units of `RANDOM_UNIT` bytes at fixed offsets, by Pearson's chi-square of
 * the unit's byte counts against the uniform distribution (random data: 255 ± 23, whatever the
 * length):
 * - a unit is random when its statistic lies within [`RANDOM_CHI_SQUARE_FLOOR`,
 *   `RANDOM_UNIT_CHI_SQUARE_LIMIT`]: above it, the byte frequencies are skewed (a tar header, a
 *   text file); below it, too even to be chance (a counter, a gradient, a table);
 * - consecutive random units are stored when they span at least `MIN_STORED_RUN` bytes and,
 *   taken together, still look random: a statistic of at most n/72 for n bytes, i.e. an entropy
 *   estimate of at least 7.99 bits per byte. This catches what units alone cannot: a random
 *   chunk repeated with a period under about 18 KiB (the statistic grows to about 255 n /
 *   period), and faintly biased data that deflate still shrinks by a percent or more;
 * - everything else is deflated at the task's level in runs; a run is primed with the 32 KiB
 *   before it, unless those are random units (after a stored run, or a previous block that
 *   ended in random bytes), where deflate would find nothing to match and priming would only
 *   cost time.
 * Stored runs go out as stored deflate blocks (BTYPE 00) of at most 65535 bytes, byte-aligned
 * like every run's end (sync flush), so runs and blocks concatenate into one valid stream. The
 * decisions read only the block's bytes (and the 32 KiB before it) with exact arithmetic, so the
 * output still depends only on the input and the level.
 *
 * The limits come from three corpora cut into 4 KiB units, each deflated at level 6 after the
 * 32 KiB before it (`/usr/share`: compressed docs, images; `/usr/lib`; the benchmark's text and
 * random files): units with a statistic under 350 grew by 0.2% when deflated; 350-400, 0.1%
 * smaller; 400-500, 2% smaller, so 400 is the line (random data exceeds it once in 50 million
 * units: 5.5 standard deviations). The same corpora in 64 KiB pieces: at 7.99 bits per byte or
 * more deflate saved 0.15%, 0.7% and nothing; between 7.98 and 7.99, 2%. Under 128, real units
 * (tables in `/usr/lib`) deflated to 90%. What stays blind costs size, never correctness:
 * random-looking bytes repeated from farther back (the same compressed file twice in a row)
 * are stored, not matched.
 */

/** Bytes per unit judged random or not. */
export const RANDOM_UNIT = 4 * 1024;
/** The chi-square (255 degrees of freedom) up to which a unit's bytes count as random. */
export const RANDOM_UNIT_CHI_SQUARE_LIMIT = 400;
/** The chi-square under which a unit's bytes are too evenly spread to be random. */
export const RANDOM_CHI_SQUARE_FLOOR = 128;
/**
 * The shortest run of random units that is stored: a shorter one is not worth a new deflate run.
 * Not less than deflate's 32 KiB window, so that the window before a run that follows a stored
 * run holds only random bytes (which is why such a run is not primed).
 */
export const MIN_STORED_RUN = 32 * 1024;

const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const UNIT = ${RANDOM_UNIT};
const UNIT_LIMIT = ${RANDOM_UNIT_CHI_SQUARE_LIMIT};
const FLOOR = ${RANDOM_CHI_SQUARE_FLOOR};
const MIN_STORED_RUN = ${MIN_STORED_RUN};
const WINDOW = 32 * 1024;
/** The most bytes one stored block holds (its LEN field is 16 bits). */
const MAX_STORED = 65535;
/** Four interleaved histograms: consecutive increments rarely hit the same counter. */
const lanes = new Uint32Array(4 * 256);
/** The last unit's byte counts, and a run's. */
const unitCounts = new Float64Array(256);
const runCounts = new Float64Array(256);

/**
 * Pearson's chi-square of byte counts totalling n against the uniform distribution:
 * 256 * sum(count^2) / n - n. Counts and squares are integers below 2^53 and IEEE 754 rounds
 * each operation exactly the same everywhere, so no platform can decide differently.
 */
function chiSquare(counts, n) {
  let squares = 0;
  for (let b = 0; b < 256; b++) squares += counts[b] * counts[b];
  return (256 * squares) / n - n;
}

/** Counts the bytes of the UNIT at start into unitCounts; whether they look random. */
function unitIsRandom(bytes, start) {
  lanes.fill(0);
  for (let i = start, end = start + UNIT; i < end; i += 4) {
    lanes[bytes[i]]++;
    lanes[256 + bytes[i + 1]]++;
    lanes[512 + bytes[i + 2]]++;
    lanes[768 + bytes[i + 3]]++;
  }
  for (let b = 0; b < 256; b++) unitCounts[b] = lanes[b] + lanes[256 + b] + lanes[512 + b] + lanes[768 + b];
  const chi = chiSquare(unitCounts, UNIT);
  return chi >= FLOOR && chi <= UNIT_LIMIT;
}

/** The block as alternating runs to store or to deflate, in order. */
function planRuns(input) {
  const runs = [];
  const add = (stored, start, end) => {
    const previous = runs[runs.length - 1];
    if (previous !== undefined && previous.stored === stored) previous.end = end;
    else runs.push({ stored, start, end });
  };
  let randomFrom = -1;
  const closeRandom = (end) => {
    const n = end - randomFrom;
    add(n >= MIN_STORED_RUN && chiSquare(runCounts, n) * 72 <= n, randomFrom, end);
    randomFrom = -1;
  };
  let start = 0;
  for (; start + UNIT <= input.length; start += UNIT) {
    if (unitIsRandom(input, start)) {
      if (randomFrom < 0) {
        randomFrom = start;
        runCounts.fill(0);
      }
      for (let b = 0; b < 256; b++) runCounts[b] += unitCounts[b];
    } else {
      if (randomFrom >= 0) closeRandom(start);
      add(false, start, start + UNIT);
    }
  }
  if (randomFrom >= 0) closeRandom(start);
  // A last partial unit is too short to judge: deflated. So is an empty block (an empty stream).
  if (start < input.length || runs.length === 0) add(false, start, input.length);
  return runs;
}

/** Whether 32 KiB of input before a block are all random units (not worth priming with). */
function windowIsRandom(window) {
  if (window.length !== WINDOW) return false;
  for (let start = 0; start < WINDOW; start += UNIT) if (!unitIsRandom(window, start)) return false;
  return true;
}

function deflateRun(task, input, run, final) {
  const options = {
    level: task.level,
    // A sync flush ends every run but the stream's last on a byte boundary, so the raw deflate
    // streams of consecutive runs and blocks concatenate into one valid stream (pigz's method).
    finishFlush: final ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
    // Room for the whole output in one buffer (deflate expands incompressible data by a few
    // bytes per 16 KiB), so zlib allocates once per run and nothing needs concatenating.
    chunkSize: Math.max(64 * 1024, run.end - run.start + ((run.end - run.start) >> 6) + 1024),
  };
  // Only a block's first run can follow compressible bytes (the previous block's tail); a later
  // run follows a stored run, whose random bytes deflate could not match.
  if (run.start === 0 && task.dictionary !== null) {
    const window = new Uint8Array(task.dictionary);
    if (!windowIsRandom(window)) options.dictionary = window;
  }
  return zlib.deflateRawSync(input.subarray(run.start, run.end), options);
}

function storedSize(length) {
  return length + 5 * Math.ceil(length / MAX_STORED);
}

/**
 * Writes input[start, end) as stored blocks at out[at] (RFC 1951 3.2.4: a header byte, LEN and
 * its complement, the bytes), the last one final when the run ends the stream. Every earlier
 * part ends on a byte boundary, so the 3 header bits and their padding fill one byte.
 */
function writeStored(out, at, input, start, end, final) {
  for (;;) {
    const length = Math.min(MAX_STORED, end - start);
    const last = start + length === end;
    out[at] = last && final ? 1 : 0;
    out[at + 1] = length & 0xff;
    out[at + 2] = length >>> 8;
    out[at + 3] = ~length & 0xff;
    out[at + 4] = (~length >>> 8) & 0xff;
    out.set(input.subarray(start, start + length), at + 5);
    at += 5 + length;
    start += length;
    if (last) return at;
  }
}

function encode(task, input) {
  const runs = planRuns(input);
  if (runs.length === 1 && !runs[0].stored) {
    const out = deflateRun(task, input, runs[0], task.last);
    // The output is a view of zlib's buffer: send the whole buffer (no copy) unless it is mostly
    // empty, then a copy of the bytes (small outputs may also share a pool slab).
    const whole = out.byteOffset === 0 && out.byteLength * 2 >= out.buffer.byteLength && out.buffer.byteLength >= 8192;
    return { output: whole ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength), length: out.byteLength };
  }
  const parts = runs.map((run, i) => (run.stored ? null : deflateRun(task, input, run, task.last && i === runs.length - 1)));
  let total = 0;
  for (let i = 0; i < runs.length; i++) total += parts[i] === null ? storedSize(runs[i].end - runs[i].start) : parts[i].byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < runs.length; i++) {
    const part = parts[i];
    if (part === null) {
      at = writeStored(out, at, input, runs[i].start, runs[i].end, task.last && i === runs.length - 1);
    } else {
      out.set(part, at);
      at += part.byteLength;
    }
  }
  return { output: out.buffer, length: total };
}

parentPort.on('message', (task) => {
  try {
    const { output, length } = encode(task, new Uint8Array(task.input, task.offset, task.length));
    // The input block goes back too, so the encoder can refill it instead of allocating.
    parentPort.postMessage({ id: task.id, output, length, input: task.input }, [output, task.input]);
  } catch (err) {
    parentPort.postMessage({ id: task.id, error: String((err && err.message) || err) });
  }
});
`;

export interface DeflateTask {
  /**
   * The block; its buffer is transferred to the worker (unusable by the caller until it comes
   * back as `DeflateResult.input`).
   */
  readonly input: Uint8Array;
  /** Up to 32 KiB of the data preceding the block, or null for the first block. */
  readonly dictionary: Uint8Array | null;
  readonly level: number;
  readonly last: boolean;
}

export interface DeflateResult {
  /** The raw deflate bytes of the block. */
  readonly output: Uint8Array;
  /** The block's buffer, returned for reuse. */
  readonly input: ArrayBuffer;
}

interface Pending {
  readonly id: number;
  readonly resolve: (result: DeflateResult) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  /** Tasks posted to this worker, in the order it answers them. */
  readonly pending: Pending[];
}

interface WorkerReply {
  readonly id: number;
  readonly output?: ArrayBuffer;
  readonly length?: number;
  readonly input?: ArrayBuffer;
  readonly error?: string;
}

export class DeflatePool {
  readonly #slots: Slot[] = [];
  #nextId = 0;

  get size(): number {
    return this.#slots.length;
  }

  /** Grows the pool to at least `workers` threads. */
  ensure(workers: number): void {
    while (this.#slots.length < workers) this.#spawn();
  }

  /**
   * Deflates one block on the least busy of the first `threads` workers. Tasks are posted to
   * the worker at once and queue in its port: a worker that finishes a block starts the next
   * without waiting for this thread to be scheduled (which matters on a busy machine).
   */
  run(task: DeflateTask, threads = 1): Promise<DeflateResult> {
    const limit = Math.max(1, threads);
    this.ensure(limit);
    let slot = this.#slots[0]!;
    for (let i = 1; i < limit; i++) if (this.#slots[i]!.pending.length < slot.pending.length) slot = this.#slots[i]!;
    return new Promise<DeflateResult>((resolve, reject) => {
      const id = this.#nextId++;
      slot.pending.push({ id, resolve, reject });
      slot.worker.ref();
      const { input, dictionary, level, last } = task;
      // The dictionary is a copy of at most 32 KiB, so it can be transferred too.
      const dict = dictionary === null ? null : dictionary.slice().buffer;
      const transfer = [input.buffer as ArrayBuffer, ...(dict === null ? [] : [dict])];
      slot.worker.postMessage({ id, input: input.buffer, offset: input.byteOffset, length: input.byteLength, dictionary: dict, level, last }, transfer);
    });
  }

  /** Stops every worker; pending tasks fail. Later calls start new workers. */
  async close(): Promise<void> {
    const slots = this.#slots.splice(0);
    const error = new Error('deflate pool closed');
    await Promise.all(
      slots.map(async (slot) => {
        for (const pending of slot.pending.splice(0)) pending.reject(error);
        await slot.worker.terminate();
      }),
    );
  }

  #spawn(): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, pending: [] };
    worker.on('message', (reply: WorkerReply) => {
      const pending = slot.pending[0];
      if (pending === undefined || pending.id !== reply.id) return;
      slot.pending.shift();
      // An idle worker must not keep the process alive; a busy one must, or the process could
      // exit under a pending compression.
      if (slot.pending.length === 0) worker.unref();
      if (reply.output !== undefined && reply.input !== undefined) pending.resolve({ output: new Uint8Array(reply.output, 0, reply.length), input: reply.input });
      else pending.reject(new Error(`deflate worker failed: ${reply.error ?? 'unknown error'}`));
    });
    const fail = (err: Error): void => {
      const index = this.#slots.indexOf(slot);
      if (index < 0) return;
      // A replacement takes the slot; the tasks the dead worker held fail (their streams error).
      this.#slots.splice(index, 1);
      for (const pending of slot.pending.splice(0)) pending.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`deflate worker exited with code ${code}`)));
    // Unref only now: adding a 'message' listener refs the worker's port again, so a worker
    // unref'd before it would keep an idle process alive.
    worker.unref();
    this.#slots.push(slot);
  }
}

let shared: DeflatePool | undefined;

/** The process-wide pool used by the gzip encoder. */
export function sharedDeflatePool(): DeflatePool {
  shared ??= new DeflatePool();
  return shared;
}

/** Terminates the shared pool's workers (they are unref'd, so this is only for tidy shutdowns). */
export async function closeDeflateWorkers(): Promise<void> {
  await shared?.close();
}
